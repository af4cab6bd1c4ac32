"""A class on JupyterHub, on this machine, end to end (`make test-hub`, as root: it creates Linux users).

The hub is deploy/one-machine/jupyterhub_config.py, run from a fresh environment built from
deploy/image/requirements.txt (Debian's Python, readable by every user) with a real
configurable-http-proxy from npm. An instructor and three students are Linux users made here. The
instructor releases the lab through nbgrader's folder exchange; the students fetch it, answer (one
right, one wrong, one hostile) and submit, the first in Chromium from the hub's login page; the
instructor runs `vae-lab grade --exchange`, which collects, grades in the sandbox and releases the
feedback; each student fetches theirs. Then the hostile student tries to read what is not hers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.browsing import free_port, launch_chromium
from tests.classroom_class import AUTOGRADED_POINTS, HOSTILE
from vae_lab.course import cell_source, nbgrader_cells

KIT = Path(__file__).resolve().parent.parent
DEPLOY = KIT / "deploy"
# Outside the checkout, which may sit where other users cannot reach (a clone under /root): the
# environment, the proxy, a copy of the kit (as postBuild clones it) and the exchange.
HUB = Path("/srv/vae-lab-hub-test")
PROXY_VERSION = "5.3.0"  # configurable-http-proxy, from the npm registry
COURSE_ID = ASSIGNMENT = "vae-lab"
TEACHER = "vlab-teacher"
STUDENTS = {"vlab-ann": "right", "vlab-bob": "wrong", "vlab-eve": "hostile"}
GROUPS = {"vae-lab-students": list(STUDENTS), "vae-lab-instructors": [TEACHER]}
EXCHANGE = HUB / "exchange"
ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS", KIT / "build" / "test-artifacts"))
INSTRUCTOR_PANELS = [
    "jupyter labextension enable --level=user @jupyter/nbgrader:formgrader",
    "jupyter labextension enable --level=user @jupyter/nbgrader:create-assignment",
]
WRONG = "def reparameterise(z_mean, z_log_var, epsilon):\n    return z_mean\n"

pytestmark = pytest.mark.skipif(
    os.environ.get("VAE_LAB_HUB_TEST") != "1",
    reason="the class on a hub runs in `make test-hub` (as root: it creates Linux users and a hub)",
)


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    if result.returncode:
        pytest.fail(f"{' '.join(command)} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def as_user(user: str, command: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """`command` run as the Linux user `user`, with only the image environment on PATH."""
    environment = {
        "HOME": f"/home/{user}",
        "USER": user,
        "LOGNAME": user,
        "PATH": f"{HUB / 'venv' / 'bin'}:/usr/bin:/bin",
        "VAE_LAB_EXCHANGE": str(EXCHANGE),
        "LANG": "C.UTF-8",
    }
    full = ["runuser", "-u", user, "--", "env", "-i", *(f"{k}={v}" for k, v in environment.items()), *command]
    if check:
        return _run(full, cwd=cwd, timeout=600)
    return subprocess.run(full, cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def image_environment() -> Path:
    """build/hub/venv from deploy/image (the kit from this checkout) and the proxy; rebuilt on a change."""
    missing = [
        name
        for name, found in [
            ("root", os.geteuid() == 0),
            ("npm", shutil.which("npm")),
            ("runuser", shutil.which("runuser")),
            ("bubblewrap", shutil.which("bwrap")),
            ("Debian's python3", Path("/usr/bin/python3").exists()),
            ("chromium", Path("/usr/bin/chromium").exists()),
        ]
        if not found
    ]
    if missing:
        pytest.fail("the hub test needs " + ", ".join(missing))
    requirements = DEPLOY / "image" / "requirements.txt"
    stamp = HUB / "venv" / ".built-from"
    image = [requirements, *(DEPLOY / "image" / name for name in ("postBuild", "nbgrader_config.py"))]
    image.append(DEPLOY / "image" / "jupyter_server_config.py")
    wanted = hashlib.sha256(
        b"".join(path.read_bytes() for path in image) + PROXY_VERSION.encode()
    ).hexdigest()
    rebuild = not stamp.exists() or stamp.read_text() != wanted
    if rebuild:
        shutil.rmtree(HUB, ignore_errors=True)
        HUB.mkdir(parents=True)
        HUB.chmod(0o755)
    kit = HUB / "kit"  # this checkout's kit, copied afresh every run: the editable install points here
    shutil.rmtree(kit, ignore_errors=True)
    shutil.copytree(
        KIT,
        kit,
        ignore=shutil.ignore_patterns(".git", ".venv*", "build", "artifacts", "__pycache__", ".*cache"),
    )
    if rebuild:
        uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or "uv"
        venv = HUB / "venv"
        environment = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
        environment.pop("VIRTUAL_ENV", None)
        _run([uv, "venv", "--quiet", "--python", "/usr/bin/python3", str(venv)], env=environment)
        install = [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python")]
        _run([*install, "-r", str(requirements)], env=environment, timeout=900)
        _run([*install, "--no-deps", "-e", str(kit)], env=environment)  # as postBuild does from the tag
        (venv / "etc" / "jupyter").mkdir(parents=True, exist_ok=True)
        for config in ("nbgrader_config.py", "jupyter_server_config.py"):  # as postBuild copies them
            shutil.copy(DEPLOY / "image" / config, venv / "etc" / "jupyter" / config)
        for line in (DEPLOY / "image" / "postBuild").read_text().splitlines():
            if line.startswith("jupyter "):  # what students see, as postBuild sets it in the image
                _run([str(venv / "bin" / "jupyter"), *shlex.split(line)[1:]], env=environment)
        _run(
            [
                "npm",
                "install",
                "--silent",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(HUB / "proxy"),
                f"configurable-http-proxy@{PROXY_VERSION}",
            ],
            timeout=300,
        )
        stamp.write_text(wanted)
    return HUB / "venv"


@pytest.fixture(scope="module")
def people(image_environment) -> dict[str, str]:
    """The instructor and the students as Linux users in the hub's groups; {user: password}. Removed after."""
    passwords = {user: secrets.token_urlsafe(12) for user in [TEACHER, *STUDENTS]}

    def remove():
        for user in passwords:
            subprocess.run(["pkill", "-KILL", "-u", user], capture_output=True)
            subprocess.run(["userdel", "--remove", user], capture_output=True)
        for group in GROUPS:
            subprocess.run(["groupdel", group], capture_output=True)
        shutil.rmtree(EXCHANGE, ignore_errors=True)

    remove()  # what an interrupted run left
    for group, members in GROUPS.items():
        _run(["groupadd", group])
        for user in members:
            # private homes, as deploy/one-machine/jupyterhub_config.py says (Debian's default is 0755)
            _run(["useradd", "--create-home", "-K", "HOME_MODE=0700", "--groups", group, user])
    _run(["chpasswd"], input="".join(f"{user}:{password}\n" for user, password in passwords.items()))
    EXCHANGE.mkdir()
    EXCHANGE.chmod(0o777)  # as deploy/one-machine/jupyterhub_config.py says; nbgrader guards what is inside
    yield passwords
    remove()


class Hub:
    def __init__(self, url: str, token: str):
        self.url, self.token = url, token

    def request(self, method: str, path: str, data=None, token: str | None = None, form=None):
        """(status, parsed JSON or text) of one request to the hub or through it to a user's server."""
        headers = {"Authorization": f"token {token or self.token}"}
        body = None
        if data is not None:
            body, headers["Content-Type"] = json.dumps(data).encode(), "application/json"
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=180) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode(errors="replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def start_server(self, user: str) -> None:
        """The user's server, started as the hub does at their first login (the user added first)."""
        if self.request("GET", f"/hub/api/users/{user}")[0] == 404:
            status, answer = self.request("POST", f"/hub/api/users/{user}")
            assert status == 201, (status, answer)
        status, answer = self.request("POST", f"/hub/api/users/{user}/server")
        assert status in (201, 202), (status, answer)
        stop = time.monotonic() + 180
        while time.monotonic() < stop:
            status, model = self.request("GET", f"/hub/api/users/{user}")
            if model.get("servers", {}).get("", {}).get("ready"):
                return
            time.sleep(0.5)
        pytest.fail(f"{user}'s server did not start in 180 s")

    def server(self, user: str, method: str, path: str, **kwargs):
        status, answer = self.request(method, f"/user/{user}{path}", **kwargs)
        assert status == 200, (user, path, status, answer)
        return answer

    def assignments(self, user: str, action: str = "") -> list[dict]:
        if action:
            form = {"course_id": COURSE_ID, "assignment_id": ASSIGNMENT}
            answer = self.server(user, "POST", f"/assignments/{action}", form=form)
        else:
            answer = self.server(user, "GET", f"/assignments?course_id={COURSE_ID}")
        assert answer.get("success", True), answer
        return answer["value"]


@pytest.fixture(scope="module")
def hub(image_environment, people, tmp_path_factory):
    run = HUB / "run"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(mode=0o700)  # the hub's database and cookie secret: root's alone
    port, token = free_port(), secrets.token_hex(32)
    proxy = HUB / "proxy" / "node_modules" / ".bin" / "configurable-http-proxy"
    (run / "jupyterhub_config.py").write_text(
        f"c = get_config()  # noqa: F821\n"
        f"load_subconfig({str(DEPLOY / 'one-machine' / 'jupyterhub_config.py')!r})  # noqa: F821\n"
        "# only what differs for a test on loopback: ports, files, and the driver's token\n"
        f"c.JupyterHub.bind_url = 'http://127.0.0.1:{port}'\n"
        f"c.JupyterHub.hub_bind_url = 'http://127.0.0.1:{free_port()}'\n"
        f"c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:{free_port()}'\n"
        f"c.ConfigurableHTTPProxy.command = [{str(proxy)!r}]\n"
        f"c.JupyterHub.db_url = 'sqlite:///{run}/jupyterhub.sqlite'\n"
        f"c.JupyterHub.cookie_secret_file = '{run}/cookie_secret'\n"
        f"c.JupyterHub.services.append({{'name': 'class-driver', 'api_token': {token!r}}})\n"
        "c.JupyterHub.load_roles.append({'name': 'class-driver', 'services': ['class-driver'], "
        "'scopes': ['admin:users', 'admin:servers', 'access:servers', 'tokens']})\n"
    )
    environment = {
        "PATH": f"{image_environment / 'bin'}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "VAE_LAB_EXCHANGE": str(EXCHANGE),
    }
    log_path = ARTIFACTS / "hub.log"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(image_environment / "bin" / "jupyterhub"), "-f", str(run / "jupyterhub_config.py")],
            cwd=run,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    hub = Hub(f"http://127.0.0.1:{port}", token)
    try:
        stop = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"jupyterhub exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
            with contextlib.suppress(OSError):
                if hub.request("GET", "/hub/api/")[0] == 200:
                    break
            if time.monotonic() > stop:
                pytest.fail(f"jupyterhub did not answer in 120 s:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.5)
        yield hub
    finally:
        with contextlib.suppress(OSError):
            for user in [TEACHER, *STUDENTS]:
                hub.request("DELETE", f"/hub/api/users/{user}/server")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def solutions(course: Path) -> dict[tuple[str, str], str]:
    """{(notebook, grade_id): the instructor's answer} for every answer cell of the course's source."""
    answers = {}
    for path in sorted((course / "source" / ASSIGNMENT).glob("*.ipynb")):
        for grade_id, cell in nbgrader_cells(json.loads(path.read_text())).items():
            if cell["metadata"]["nbgrader"].get("solution") and cell["cell_type"] == "code":
                answers[(path.stem, grade_id)] = cell_source(cell)
    return answers


def answer(hub: Hub, user: str, answers: dict[tuple[str, str], str]) -> None:
    """Write `answers` into the user's fetched notebooks through their server, as the editor saves them."""
    for notebook in sorted({name for name, _ in answers}):
        path = f"/api/contents/{ASSIGNMENT}/{notebook}.ipynb"
        content = hub.server(user, "GET", path)["content"]
        for cell in content["cells"]:
            grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
            if (notebook, grade_id) in answers:
                cell["source"] = answers[(notebook, grade_id)]
        hub.server(user, "PUT", path, data={"type": "notebook", "format": "json", "content": content})


def status_of(listing: list[dict]) -> set[str]:
    return {entry["status"] for entry in listing if entry["assignment_id"] == ASSIGNMENT}


def fetch_and_submit_in_the_browser(hub: Hub, user: str, password: str, answers, playwright_api) -> None:
    """From the login page to the submitted notebook in Chromium; the answers are saved on the way."""
    home = HUB / "browser"
    shutil.rmtree(home, ignore_errors=True)
    with launch_chromium(playwright_api, home) as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{hub.url}/hub/login", timeout=60_000)
        page.fill("#username_input", user)
        page.fill("#password_input", password)
        page.click("#login_submit")
        page.wait_for_url(f"**/user/{user}/lab**", timeout=180_000)
        page.wait_for_selector(".jp-LabShell", timeout=120_000)
        page.get_by_text("Nbgrader", exact=True).first.click()
        page.get_by_text("Assignment List", exact=True).click()
        released = page.locator("#released_assignments_list")
        fetch = released.get_by_role("button", name="Fetch")  # on the row of the released lab
        fetch.wait_for(timeout=60_000)
        assert ASSIGNMENT in released.inner_text()
        assert page.get_by_text("Create Assignment").count() == 0  # the instructor's panels are not there
        page.screenshot(path=str(ARTIFACTS / "hub_assignment_list.png"))
        fetch.click()
        fetched = page.locator("#fetched_assignments_list")
        fetched.get_by_role("button", name="Submit").wait_for(timeout=60_000)
        answer(hub, user, answers)  # what the student typed and saved
        fetched.get_by_role("button", name="Submit").click()
        page.locator("#submitted_assignments_list").get_by_text(ASSIGNMENT).first.wait_for(timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "hub_submitted.png"))


@pytest.fixture(scope="module")
def lab(hub, people, playwright_api) -> dict:
    """The whole lab: release, fetch, answer, submit, grade, feedback. Returns what it saw."""
    course = Path(f"/home/{TEACHER}/course")
    for command in INSTRUCTOR_PANELS:  # as README's "Teaching a class" tells an instructor
        as_user(TEACHER, shlex.split(command), cwd=Path(f"/home/{TEACHER}"))
    hub.start_server(TEACHER)  # the instructor works in their own server; the commands run as them
    as_user(
        TEACHER, ["vae-lab", "release", "--exchange", "--course", str(course)], cwd=Path(f"/home/{TEACHER}")
    )
    right = solutions(course)
    hostile_attack = HOSTILE.format(
        submissions=str(course / "collected"),
        course=str(course),
        victim=str(course / "collected" / "vlab-ann" / ASSIGNMENT / "04_compare.ipynb"),
    )
    answers = {
        "vlab-ann": right,
        "vlab-bob": {("02_vae_lab", "reparameterise"): WRONG},
        "vlab-eve": {("02_vae_lab", "reparameterise"): hostile_attack},
    }
    seen = {}
    for user in STUDENTS:
        if user == "vlab-ann":  # her login starts her server; the browser waits for the released lab
            fetch_and_submit_in_the_browser(hub, user, people[user], answers[user], playwright_api)
            seen[user] = {"listed": {"released"}}
        else:
            hub.start_server(user)
            seen[user] = {"listed": status_of(hub.assignments(user))}
            hub.assignments(user, "fetch")
            answer(hub, user, answers[user])
            hub.assignments(user, "submit")
        seen[user]["after submitting"] = status_of(hub.assignments(user))
    graded = as_user(TEACHER, ["vae-lab", "grade", "--exchange", "--course", str(course)], cwd=course)
    seen["grading"] = graded.stdout
    for user in STUDENTS:
        hub.assignments(user, "fetch_feedback")
        folder = Path(f"/home/{user}/{ASSIGNMENT}/feedback")
        seen[user]["feedback"] = {page.name: page.read_text() for page in sorted(folder.glob("*/*.html"))}
    again = as_user(TEACHER, ["vae-lab", "grade", "--exchange", "--course", str(course)], cwd=course)
    seen["grading again"] = again.stdout  # nothing new in the exchange: nobody is graded twice
    seen["grades"] = list(csv_rows(course / "grades.csv"))
    record_server_memory([TEACHER, *STUDENTS])
    return seen


def record_server_memory(users: list[str]) -> None:
    """Each user's processes' resident memory (their JupyterLab server, no kernel running), for the README."""
    import psutil

    lines = []
    for user in users:
        resident = 0
        for process in psutil.process_iter(["username", "memory_info"]):
            if process.info["username"] == user and process.info["memory_info"]:
                resident += process.info["memory_info"].rss
        lines.append(f"{user}: {resident / 2**20:.0f} MiB")
    (ARTIFACTS / "hub_server_memory.txt").write_text("\n".join(lines) + "\n")


def csv_rows(path: Path):
    import csv

    with open(path, newline="") as file:
        yield from csv.DictReader(file)


def test_each_student_fetches_submits_and_reads_their_feedback(lab):
    for user in STUDENTS:
        assert lab[user]["listed"] == {"released"}, user
        assert "submitted" in lab[user]["after submitting"], user
        pages = lab[user]["feedback"]
        assert sorted(pages) == ["02_vae_lab.html", "03_generate_and_explore.html", "04_compare.html"], user
    assert (ARTIFACTS / "hub_assignment_list.png").stat().st_size > 10_000
    assert (ARTIFACTS / "hub_submitted.png").stat().st_size > 10_000


def test_the_gradebook_scores_the_right_answer_fully_and_the_others_for_what_they_got_right(lab):
    scores = {row["student_id"]: float(row["score"]) for row in lab["grades"]}
    assert scores["vlab-ann"] == AUTOGRADED_POINTS
    assert scores["vlab-bob"] == 0  # a wrong reparameterise, the rest as released
    assert scores["vlab-eve"] == 2  # her reparameterise is right; her attacks did nothing
    assert "3 students, 3 new or changed" in lab["grading"]
    assert "3 students, 0 new or changed" in lab["grading again"]


PEEK = """
import json, os, sys
seen = {}
for path in sys.argv[1:]:
    try:
        seen[path] = sorted(os.listdir(path)) if os.path.isdir(path) else len(open(path, "rb").read())
    except OSError as error:
        seen[path] = type(error).__name__
print(json.dumps(seen))
"""


def test_no_student_reads_another_students_work_or_the_course(lab, hub):
    course = Path(f"/home/{TEACHER}/course")
    inbound = EXCHANGE / COURSE_ID / "inbound"
    submitted = [path for path in inbound.iterdir() if path.name.startswith("vlab-ann+")]
    assert submitted, sorted(inbound.iterdir())
    # nbgrader's folder exchange hides a submission by its name: inbound/ cannot be listed, and the
    # name ends in a random string (nbgrader's add_random_string) no other student can know
    assert re.fullmatch(r"vlab-ann\+vae-lab\+[^+]+\+[A-Za-z0-9_-]{12}", submitted[0].name)
    targets = [
        inbound,  # whose submissions there are
        course / "source" / ASSIGNMENT / "02_vae_lab.ipynb",  # the instructor's solutions
        course / "gradebook.db",
        Path("/home/vlab-ann") / ASSIGNMENT / "02_vae_lab.ipynb",  # Ann's own copy
    ]
    peek = as_user("vlab-eve", ["python", "-c", PEEK, *map(str, targets)], cwd=Path("/tmp"))
    seen = json.loads(peek.stdout)
    assert seen == {str(path): "PermissionError" for path in targets}
    # through the hub: Eve's own token opens her server and no one else's
    status, issued = hub.request("POST", "/hub/api/users/vlab-eve/tokens", data={"note": "test"})
    assert status in (200, 201), issued
    eve = issued["token"]
    assert hub.request("GET", "/user/vlab-eve/api/contents", token=eve)[0] == 200
    assert hub.request("GET", "/user/vlab-ann/api/contents", token=eve)[0] == 403
    assert hub.request("GET", f"/user/{TEACHER}/api/contents", token=eve)[0] == 403
    assert hub.request("GET", f"/user/{TEACHER}/formgrader")[0] == 200  # the instructor grades by hand there
    # her submitted attacks ran in the grader's sandbox: nothing planted, deleted or rewritten
    assert not (course / "planted.txt").exists()
    assert (course / "collected" / "vlab-ann" / ASSIGNMENT / "04_compare.ipynb").exists()
