# SPDX-License-Identifier: LGPL-2.1-or-later
"""safecad-manager, the Token Manager window, in a Desktop session (Xvfb,
a session bus with its accessibility bus), driven through AT-SPI as a
person with a screen reader would: controls found by role and name,
pressed, and what the window shows read back."""

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from .desktop import Desktop
from .safecad import BUILD_DIR, assert_sanitizer_clean

MANAGER = os.path.join(BUILD_DIR, "client", "safecad-manager")
HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, "atspi-driver")
XDG_OPEN = os.path.join(HERE, "fake-bin", "xdg-open")
PYTHON = "/usr/bin/python3"

BROWSER_ENTRY = f"""\
[Desktop Entry]
Type=Application
Name=Test browser
Exec={XDG_OPEN} %u
MimeType=x-scheme-handler/http;x-scheme-handler/https;
"""


BUS_NAME = "org.safecad.Manager"
BUILT_SERVICE = os.path.join(BUILD_DIR, "data", "org.safecad.Manager.service")
BUILT_DESKTOP = os.path.join(BUILD_DIR, "data", "org.safecad.Manager.desktop")


class ActivatedProcess:
    """The window as the session bus started it: a child of the bus, not
    of the test, so its exit status comes from the file the service's
    command line writes."""

    def __init__(self, pid, log_path, status_path):
        self.pid = pid
        self.log_path = log_path
        self.status_path = status_path
        self.returncode = None

    def poll(self):
        if self.returncode is None and os.path.exists(self.status_path):
            with open(self.status_path) as f:
                text = f.read().strip()
            if text:
                self.returncode = int(text)
        return self.returncode

    def send_signal(self, sig):
        os.kill(self.pid, sig)

    def kill(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def wait(self, timeout=None):
        deadline = time.monotonic() + (timeout or 3600)
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("safecad-manager", timeout)
            time.sleep(0.1)
        return self.returncode


class ManagerWindow:
    def __init__(self, world, desktop, gtk_leaks=False, **extra):
        if not os.access(MANAGER, os.X_OK):
            raise AssertionError(f"{MANAGER} is missing: build safecad with GTK 4 first")
        self.desktop = desktop
        self.procs = []
        config = os.path.join(desktop.dir, "config")
        data = os.path.join(desktop.dir, "data")
        self.config = config
        self.data = data
        os.makedirs(os.path.join(config, "gtk-4.0"), exist_ok=True)
        os.makedirs(os.path.join(data, "applications"), exist_ok=True)
        # No blinking cursor: a window at rest wakes nobody up.
        with open(os.path.join(config, "gtk-4.0", "settings.ini"), "w") as f:
            f.write("[Settings]\ngtk-cursor-blink=false\ngtk-enable-animations=false\n")
        # The desktop's handler for web addresses records what it is given.
        with open(os.path.join(data, "applications", "test-browser.desktop"), "w") as f:
            f.write(BROWSER_ENTRY)
        with open(os.path.join(config, "mimeapps.list"), "w") as f:
            f.write("[Default Applications]\nx-scheme-handler/https=test-browser.desktop\n"
                    "x-scheme-handler/http=test-browser.desktop\n")
        self.env = world.base_env()
        self.env.update(desktop.env(
            XDG_CONFIG_HOME=config, XDG_DATA_HOME=data, GDK_BACKEND="x11",
            GSK_RENDERER="cairo", GSETTINGS_BACKEND="memory", GDK_DEBUG="gl-disable",
            **extra))
        if gtk_leaks:
            # GTK 4.8 leaks in its own code once its file chooser or an app
            # launch has run; GLib has no frame pointers, so the fast
            # unwinder's stacks end in g_malloc and no suppression can tell
            # those leaks from ours, while full stacks made a test 3 times
            # slower. The tests that open those leave leak checking off;
            # every other test of the window keeps it on.
            self.env["ASAN_OPTIONS"] = (self.env.get("ASAN_OPTIONS", "")
                                        + ":detect_leaks=0").lstrip(":")
        self.proc = None
        self.driver = subprocess.Popen([PYTHON, DRIVER], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True,
                                       env=desktop.env(), start_new_session=True)

    def start(self):
        self.proc = self.launch()
        return self

    def launch(self):
        log = os.path.join(self.desktop.dir, f"manager-{len(self.procs)}.log")
        proc = subprocess.Popen([MANAGER], env=self.env, stdout=open(log, "w"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        proc.log_path = log
        self.procs.append(proc)
        return proc

    def install_service(self):
        """Installs the window for D-Bus activation on the test's session
        bus, as the package does: the built .service file (its command line
        pointed at the build and logging for the test) and desktop file, and
        the session's environment handed to the bus for what it starts."""
        with open(BUILT_SERVICE) as f:
            text = f.read()
        assert re.search(r"^Name=org\.safecad\.Manager$", text, re.M), text
        assert "--gapplication-service" in text, text
        n = len(self.procs)
        self._activated_log = os.path.join(self.desktop.dir, f"manager-{n}.log")
        self._activated_status = os.path.join(self.desktop.dir, f"manager-{n}.status")
        command = (f"Exec=/bin/sh -c '\"$0\" --gapplication-service >>\"$1\" 2>&1; "
                   f"echo $? >\"$2\"' {MANAGER} {self._activated_log} "
                   f"{self._activated_status}")
        text = re.sub(r"^Exec=.*$", lambda _: command, text, flags=re.M)
        services = os.path.join(self.data, "dbus-1", "services")
        os.makedirs(services, exist_ok=True)
        with open(os.path.join(services, "org.safecad.Manager.service"), "w") as f:
            f.write(text)
        with open(BUILT_DESKTOP) as f:
            entry = f.read()
        assert "DBusActivatable=true" in entry, entry
        with open(os.path.join(self.data, "applications", "org.safecad.Manager.desktop"),
                  "w") as f:
            f.write(entry)
        self._bus("org.freedesktop.DBus", "UpdateActivationEnvironment", "a{ss}",
                  str(len(self.env)), *[x for kv in self.env.items() for x in kv])
        self._bus("org.freedesktop.DBus", "ReloadConfig")

    def _bus(self, interface, method, *args):
        r = subprocess.run(["busctl", f"--address={self.desktop.address}", "call",
                            "org.freedesktop.DBus", "/org/freedesktop/DBus", interface, method]
                           + list(args), capture_output=True, text=True, timeout=15)
        assert r.returncode == 0, f"{method}: {r.stdout}{r.stderr}"
        return r.stdout

    def running(self):
        """Whether the window owns its name on the session bus."""
        names = self._bus("org.freedesktop.DBus", "ListNames")
        return f'"{BUS_NAME}"' in names

    def attach(self, timeout=60):
        """Waits for the window the session bus started (D-Bus activation)
        and drives that one from now on."""
        deadline = time.monotonic() + timeout
        while not self.running():
            if time.monotonic() > deadline:
                log = ""
                if os.path.exists(self._activated_log):
                    log = open(self._activated_log, errors="replace").read()
                raise TimeoutError(f"the session bus did not start the window: {log}")
            time.sleep(0.2)
        answer = self._bus("org.freedesktop.DBus", "GetConnectionUnixProcessID", "s", BUS_NAME)
        self.proc = ActivatedProcess(int(answer.split()[1]), self._activated_log,
                                     self._activated_status)
        self.procs.append(self.proc)
        return self

    def log(self, proc=None):
        with open((proc or self.proc).log_path, errors="replace") as f:
            return f.read()

    # --- AT-SPI ----------------------------------------------------------
    def _ask(self, **request):
        request.setdefault("pid", self.proc.pid)
        self.driver.stdin.write(json.dumps(request) + "\n")
        self.driver.stdin.flush()
        line = self.driver.stdout.readline()
        if not line:
            raise RuntimeError("the AT-SPI driver died")
        return json.loads(line)

    def nodes(self):
        """[(role, name, states, text)] of every accessible of the app."""
        answer = self._ask(op="dump")
        return [tuple(n) for n in answer.get("nodes", [])]

    def everything(self):
        """Every node with all an AT-SPI client can read of it."""
        return self._ask(op="everything").get("nodes", [])

    def type(self, text):
        """Types ASCII text with the keyboard, into what has the focus."""
        subprocess.run(["xdotool", "type", "--delay", "60", text], env=self.desktop.env(),
                       check=True, timeout=30)

    def texts(self):
        """Every name and text the window exposes, showing or not."""
        out = []
        for role, name, states, text in self.nodes():
            if name:
                out.append(name)
            if text:
                out.append(text)
        return out

    def wait(self, predicate, timeout=30, what="the window"):
        deadline = time.monotonic() + timeout
        while True:
            texts = self.texts()
            if predicate(texts):
                return texts
            if self.proc.poll() is not None:
                raise AssertionError(f"safecad-manager exited {self.proc.returncode}:\n"
                                     f"{self.log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} within {timeout}s; shown: {texts}")
            time.sleep(0.3)

    def wait_text(self, *parts, timeout=30):
        """Until some name or text contains each part (all in one)."""
        return self.wait(lambda texts: any(all(p in t for p in parts) for t in texts),
                         timeout, f"text {parts!r}")

    def wait_no_text(self, part, timeout=30):
        return self.wait(lambda texts: not any(part in t for t in texts), timeout,
                         f"no text {part!r}")

    def find(self, role, name):
        return [n for n in self.nodes() if n[0] == role and n[1] == name]

    def act(self, role, name, do, value=None, index=0, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            answer = self._ask(op="act", role=role, name=name, do=do, value=value, index=index)
            if "error" not in answer:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{do} {role} {name!r}: {answer['error']}; "
                                     f"shown: {self.texts()}")
            time.sleep(0.3)

    def click(self, name, role="push button", index=0):
        self.act(role, name, "click", index=index)

    def key(self, *keys):
        subprocess.run(["xdotool", "key", "--clearmodifiers"] + list(keys),
                       env=self.desktop.env(), check=True, timeout=15)

    def describe(self, role, name, timeout=15):
        """The node's AT-SPI actions and its extents in the window (waiting
        while the window rebuilds the view around it)."""
        deadline = time.monotonic() + timeout
        while True:
            answer = self._ask(op="act", role=role, name=name, do="describe")
            if "error" not in answer:
                return answer
            if time.monotonic() > deadline:
                raise AssertionError(f"{role} {name!r}: {answer['error']}")
            time.sleep(0.3)

    def click_pointer(self, role, name, timeout=15):
        """Clicks a control with the mouse, as a person does: scrolled into
        view with the wheel first. For controls that GTK 4.8 gives no
        AT-SPI action (check boxes); with no window manager the window sits
        at 0,0, so window coordinates are the screen's."""
        deadline = time.monotonic() + timeout
        while True:
            x, y, width, height = self.describe(role, name)["extents"]
            middle = y + height // 2
            # Below the header bar, and above the bottom edge of the 620-pixel
            # window with a margin (a point on its edge lands on nothing).
            if 60 < middle < 590:
                subprocess.run(["xdotool", "mousemove", str(x + width // 2), str(middle),
                                "click", "1"], env=self.desktop.env(), check=True, timeout=15)
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{role} {name!r} never scrolled into view: {y}")
            button = "5" if middle >= 590 else "4"
            subprocess.run(["xdotool", "mousemove", "430", "330", "click", "--repeat", "3",
                            button], env=self.desktop.env(), check=True, timeout=15)
            time.sleep(0.3)

    def toggle(self, name):
        """Ticks a check box (GTK 4.8 gives check boxes no AT-SPI action)."""
        self.click_pointer("check box", name)

    # --- the end ---------------------------------------------------------
    def stop(self, proc=None):
        """SIGTERM; it must exit 0 with a clean sanitizer log."""
        proc = proc or self.proc
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(20)
        text = self.log(proc)
        assert rc == 0, f"safecad-manager exited {rc}: {text}"
        assert_sanitizer_clean(text, "safecad-manager")

    def close(self):
        problems = []
        for proc in self.procs:
            if proc.poll() is None:
                if isinstance(proc, ActivatedProcess):
                    proc.kill()
                else:
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                proc.wait(5)
            else:
                try:
                    assert_sanitizer_clean(self.log(proc), "safecad-manager")
                except AssertionError as e:
                    problems.append(str(e))
        if self.driver.poll() is None:
            self.driver.stdin.close()
            try:
                self.driver.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.driver.pid, signal.SIGKILL)
                self.driver.wait(5)
        return problems


WINDOW_TOOLS = ["Xvfb", "dbus-daemon", "xdotool", "import"]


def require_window(tools=()):
    """Skips the test where the window cannot be shown and read."""
    for tool in WINDOW_TOOLS + list(tools):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    if not os.access(MANAGER, os.X_OK):
        pytest.skip("safecad-manager is not built (GTK 4 and libadwaita missing)")
    r = subprocess.run([PYTHON, "-c", "import pyatspi"], capture_output=True)
    if r.returncode != 0:
        pytest.skip("pyatspi is not installed (python3-pyatspi)")


@contextlib.contextmanager
def window_desktop(prefix, server):
    """A Desktop (with notification server `server`) for tests of the
    window; its windows (desktop.windows) and agents are closed after the
    test, their logs printed, and a sanitizer report fails the test."""
    directory = tempfile.mkdtemp(prefix=prefix)
    d = Desktop(directory)
    d.windows = []
    problems = []
    try:
        d.start(server)
        yield d
    finally:
        try:
            for w in d.windows:
                problems += w.close()
            problems += d.stop()
        finally:
            d.print_logs()
            for w in d.windows:
                for i, proc in enumerate(w.procs):
                    try:
                        print(f"----- safecad-manager log #{i} -----\n{w.log(proc)}")
                    except OSError:
                        pass
            shutil.rmtree(directory, ignore_errors=True)
    if problems:
        pytest.fail("teardown: " + "\n".join(problems), pytrace=False)
