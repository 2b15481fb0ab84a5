# SPDX-License-Identifier: LGPL-2.1-or-later
"""A desktop session for safecad-notify: a virtual X display (Xvfb), a
session bus, dunst as the notification server, a monitor that records every
notification the agent sends and the server's answers, a scripted pinentry
and xdg-open, and the agent itself on the test's private system bus."""

import json
import os
import queue
import signal
import subprocess
import threading
import time

from gi.repository import Gio, GLib

from .safecad import BUILD_DIR, assert_sanitizer_clean

AGENT = os.path.join(BUILD_DIR, "client", "safecad-notify")
HERE = os.path.dirname(os.path.abspath(__file__))
FAKE_PINENTRY = os.path.join(HERE, "fake-pinentry")
DMENU = os.path.join(HERE, "fake-dmenu")
XDG_OPEN_DIR = os.path.join(HERE, "fake-bin")

DUNSTRC = """\
[global]
    font = DejaVu Sans 11
    width = (360, 520)
    height = 400
    origin = top-right
    offset = 12x12
    frame_width = 2
    frame_color = "#2b6cb0"
    separator_height = 2
    padding = 10
    horizontal_padding = 12
    gap_size = 6
    markup = full
    format = "<b>%s</b>\\n%b"
    alignment = left
    word_wrap = yes
    ellipsize = end
    icon_position = off
    show_indicators = no
    sticky_history = yes
    history_length = 100
    idle_threshold = 0
    notification_limit = 0
    dmenu = {dmenu}
    mouse_left_click = do_action, close_current
[urgency_low]
    background = "#f7fafc"
    foreground = "#1a202c"
    timeout = 0
[urgency_normal]
    background = "#f7fafc"
    foreground = "#1a202c"
    timeout = 0
[urgency_critical]
    background = "#fff5f5"
    foreground = "#742a2a"
    frame_color = "#c53030"
    timeout = 0
"""


def _kill(proc):
    if proc and proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(5)


class NotificationMonitor:
    """Every Notify call on the session bus with the id the server gave it,
    and the server's ActionInvoked/NotificationClosed signals."""

    def __init__(self, address):
        self.calls = {}  # (sender, serial) -> notification dict
        self.events = queue.Queue()
        self.seen = []
        self.all = []  # every notification shown, consumed or not
        self._ready = threading.Event()
        self._error = None
        self._address = address
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error:
            raise RuntimeError(f"notification monitor did not start: {self._error}")

    def _run(self):
        ctx = GLib.MainContext()
        ctx.push_thread_default()
        try:
            self._conn = Gio.DBusConnection.new_for_address_sync(
                self._address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
                | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
            self._conn.add_filter(self._filter, None)
            rules = ["type='method_call',interface='org.freedesktop.Notifications'",
                     "type='method_return'", "type='error'",
                     "type='signal',interface='org.freedesktop.Notifications'"]
            self._conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus",
                                 "org.freedesktop.DBus.Monitoring", "BecomeMonitor",
                                 GLib.Variant("(asu)", (rules, 0)), None,
                                 Gio.DBusCallFlags.NONE, 5000, None)
            self._loop = GLib.MainLoop(ctx)
        except Exception as e:  # noqa: BLE001 - reported to the caller
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        self._loop.run()

    def _filter(self, conn, message, incoming, data):
        # The bus's own answers (BecomeMonitor's reply) are GDBus's; what
        # others send is only watched, never answered (a monitor may not
        # send).
        if not incoming or message.get_sender() == "org.freedesktop.DBus":
            return message
        kind = message.get_message_type()
        if kind == Gio.DBusMessageType.METHOD_CALL and message.get_member() == "Notify":
            args = message.get_body().unpack()
            n = {"app": args[0], "replaces": args[1], "icon": args[2], "summary": args[3],
                 "body": args[4], "actions": dict(zip(args[5][::2], args[5][1::2])),
                 "hints": args[6], "timeout": args[7], "sender": message.get_sender(),
                 "id": None}
            self.calls[(message.get_sender(), message.get_serial())] = n
        elif kind == Gio.DBusMessageType.METHOD_RETURN:
            n = self.calls.pop((message.get_destination(), message.get_reply_serial()), None)
            if n is not None:
                n["id"] = message.get_body().unpack()[0]
                self.events.put(("notify", n))
        elif kind == Gio.DBusMessageType.SIGNAL:
            self.events.put((message.get_member(), message.get_body().unpack()))
        return None

    def _pull(self, timeout):
        try:
            event = self.events.get(timeout=max(timeout, 0))
        except queue.Empty:
            return False
        self.seen.append(event)
        if event[0] == "notify":
            self.all.append(event[1])
        return True

    def notifications(self):
        while self._pull(0):
            pass
        return list(self.all)

    def wait(self, match, timeout=30, what="notification"):
        """The first notification shown from now on (not yet consumed) for
        which match(n) holds; it is consumed."""
        deadline = time.monotonic() + timeout
        checked = 0
        while True:
            for i in range(checked, len(self.seen)):
                kind, n = self.seen[i]
                if kind == "notify" and match(n):
                    self.seen.pop(i)
                    return n
            checked = len(self.seen)
            left = deadline - time.monotonic()
            if left <= 0:
                shown = [(e[1]["id"], e[1]["summary"]) for e in self.seen if e[0] == "notify"]
                raise TimeoutError(f"no {what} within {timeout}s; shown: {shown}")
            self._pull(left)

    def wait_summary(self, text, timeout=30):
        return self.wait(lambda n: text in n["summary"], timeout, f"notification '{text}'")

    def stop(self):
        loop = getattr(self, "_loop", None)
        if loop is not None:
            loop.quit()
        self._thread.join(5)


PLAIN_SERVER_XML = """
<node>
  <interface name="org.freedesktop.Notifications">
    <method name="GetCapabilities"><arg type="as" direction="out"/></method>
    <method name="Notify">
      <arg type="s" direction="in"/><arg type="u" direction="in"/>
      <arg type="s" direction="in"/><arg type="s" direction="in"/>
      <arg type="s" direction="in"/><arg type="as" direction="in"/>
      <arg type="a{sv}" direction="in"/><arg type="i" direction="in"/>
      <arg type="u" direction="out"/>
    </method>
    <method name="CloseNotification"><arg type="u" direction="in"/></method>
    <method name="GetServerInformation">
      <arg type="s" direction="out"/><arg type="s" direction="out"/>
      <arg type="s" direction="out"/><arg type="s" direction="out"/>
    </method>
  </interface>
</node>
"""


class PlainServer:
    """A notification server that shows text only: no actions, no markup,
    as some desktops' servers are. (dunst always offers actions, so this
    one stands in for those servers.)"""

    def __init__(self, address):
        self._address = address
        self._next = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the plain notification server did not start")

    def _run(self):
        ctx = GLib.MainContext()
        ctx.push_thread_default()
        conn = Gio.DBusConnection.new_for_address_sync(
            self._address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
            | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        info = Gio.DBusNodeInfo.new_for_xml(PLAIN_SERVER_XML).interfaces[0]
        conn.register_object("/org/freedesktop/Notifications", info, self._call, None, None)
        conn.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                       "RequestName", GLib.Variant("(su)", ("org.freedesktop.Notifications", 4)),
                       None, Gio.DBusCallFlags.NONE, 5000, None)
        self._loop = GLib.MainLoop(ctx)
        self._ready.set()
        self._loop.run()

    def _call(self, conn, sender, path, iface, method, params, invocation):
        if method == "GetCapabilities":
            invocation.return_value(GLib.Variant("(as)", (["body"],)))
        elif method == "Notify":
            replaces = params.unpack()[1]
            if replaces == 0:
                self._next += 1
            invocation.return_value(GLib.Variant("(u)", (replaces or self._next,)))
        elif method == "CloseNotification":
            invocation.return_value(None)
        else:
            invocation.return_value(GLib.Variant("(ssss)", ("plain", "test", "1", "1.2")))

    def stop(self):
        loop = getattr(self, "_loop", None)
        if loop is not None:
            loop.quit()
        self._thread.join(5)


class Desktop:
    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.procs = []
        self.agents = []
        self.monitor = None
        self.home = os.path.join(directory, "home")
        self.runtime = os.path.join(directory, "run")
        self.data = os.path.join(directory, "data")
        os.makedirs(self.home, exist_ok=True)
        os.makedirs(self.runtime, mode=0o700, exist_ok=True)
        self.pinentry_log = os.path.join(directory, "pinentry.log")
        self.pinentry_pin = os.path.join(directory, "pinentry.pin")
        self.dmenu_choice = os.path.join(directory, "dmenu.choice")
        self.dmenu_log = os.path.join(directory, "dmenu.log")
        self.opened = os.path.join(directory, "opened.log")

    def start(self, server="dunst"):
        # The display: Xvfb picks a free number and tells it on a pipe. An X
        # server resets when its last client leaves, and a client connecting
        # during the reset is refused ("cannot open display"): a test's
        # xdotool or screenshot can be that last client, so never reset.
        r, w = os.pipe()
        xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1024x640x24",
                                 "-nolisten", "tcp", "-noreset"], pass_fds=(w,),
                                start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(w)
        self.procs.append(xvfb)
        with os.fdopen(r) as f:
            number = f.readline().strip()
        if not number:
            raise RuntimeError("Xvfb did not start")
        self.display = f":{number}"
        # What the bus starts inherits this: the accessibility bus puts its
        # socket in XDG_RUNTIME_DIR, else in ~/.cache/at-spi/bus, one path
        # for every session of the user, taken over by the latest one and
        # removed when any one ends. The bus finds the services a test
        # installs (the Token Manager's D-Bus activation) in the test's own
        # data folder; the folder is there from the start, so the bus
        # watches it.
        os.makedirs(os.path.join(self.data, "dbus-1", "services"), exist_ok=True)
        env = dict(os.environ, HOME=self.home, XDG_RUNTIME_DIR=self.runtime,
                   DISPLAY=self.display, XDG_DATA_HOME=self.data)
        bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--print-address",
                                f"--address=unix:path={os.path.join(self.dir, 'session-bus')}"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               start_new_session=True)
        self.procs.append(bus)
        self.address = bus.stdout.readline().decode().strip()
        if not self.address:
            raise RuntimeError("the session bus did not start")
        self.monitor = NotificationMonitor(self.address)
        if server == "plain":
            self.plain = PlainServer(self.address)
            return self
        rc = os.path.join(self.dir, "dunstrc")
        with open(rc, "w") as f:
            f.write(DUNSTRC.format(dmenu=DMENU))
        self.dunst_log = os.path.join(self.dir, "dunst.log")
        dunst = subprocess.Popen(["dunst", "-conf", rc], env=self.env(),
                                 stdout=open(self.dunst_log, "w"), stderr=subprocess.STDOUT,
                                 start_new_session=True)
        self.procs.append(dunst)
        deadline = time.monotonic() + 15
        while not self._server_up():
            if dunst.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dunst did not start: {open(self.dunst_log).read()}")
            time.sleep(0.1)
        return self

    def _server_up(self):
        r = subprocess.run(["dbus-send", f"--bus={self.address}", "--print-reply",
                            "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
                            "org.freedesktop.DBus.NameHasOwner",
                            "string:org.freedesktop.Notifications"],
                           capture_output=True, text=True)
        return "boolean true" in r.stdout

    def env(self, **extra):
        env = {
            "PATH": XDG_OPEN_DIR + ":" + os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.home,
            "XDG_RUNTIME_DIR": self.runtime,
            "DISPLAY": self.display,
            "DBUS_SESSION_BUS_ADDRESS": self.address,
            "LANG": "C.UTF-8",
            "PINENTRY": FAKE_PINENTRY,
            "FAKE_PINENTRY_LOG": self.pinentry_log,
            "FAKE_PINENTRY_PIN": self.pinentry_pin,
            "FAKE_DMENU_CHOICE": self.dmenu_choice,
            "FAKE_DMENU_LOG": self.dmenu_log,
            "FAKE_OPENED_LOG": self.opened,
        }
        env.update(extra)
        return {k: v for k, v in env.items() if v is not None}

    def start_agent(self, world, **extra):
        if not os.access(AGENT, os.X_OK):
            raise AssertionError(f"{AGENT} is missing: build safecad first")
        env = world.base_env()
        env.update(self.env(**extra))
        log = os.path.join(self.dir, f"agent-{len(self.agents)}.log")
        proc = subprocess.Popen([AGENT], env=env, stdout=open(log, "w"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        proc.log_path = log
        self.agents.append(proc)
        return proc

    def wait_agent(self, timeout=15):
        """Until the agent owns its name on the session bus: it follows
        safecad from then on."""
        deadline = time.monotonic() + timeout
        while True:
            r = subprocess.run(["busctl", "--address=" + self.address, "list", "--no-legend"],
                               capture_output=True, text=True)
            if "org.safecad.Notify" in r.stdout:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"safecad-notify not on the session bus: {self.agent_log()}")
            time.sleep(0.1)

    def agent_log(self, i=-1):
        with open(self.agents[i].log_path, errors="replace") as f:
            return f.read()

    def stop_agent(self, proc):
        """SIGTERM; the agent must exit 0 with a clean sanitizer log."""
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(10)
        with open(proc.log_path, errors="replace") as f:
            text = f.read()
        assert rc == 0, f"safecad-notify exited {rc}: {text}"
        assert_sanitizer_clean(text, "safecad-notify")

    def set_pin(self, *pins):
        """What the scripted pinentry answers from now on, one per dialogue,
        the last one again once they are used up (None: the user cancels)."""
        for path in (self.pinentry_pin, self.pinentry_pin + ".used"):
            if os.path.exists(path):
                os.unlink(path)
        if pins != (None,):
            with open(self.pinentry_pin, "w") as f:
                f.write("\n".join(pins))

    def pinentry_commands(self):
        try:
            with open(self.pinentry_log) as f:
                return [json.loads(line) for line in f]
        except FileNotFoundError:
            return []

    def dunstctl(self, *args):
        r = subprocess.run(["dunstctl"] + list(args), env=self.env(), capture_output=True,
                           text=True, timeout=15)
        assert r.returncode == 0, f"dunstctl {args}: {r.stdout}{r.stderr}"
        return r.stdout

    def invoke(self, notification_id, action):
        """Chooses action of a displayed notification from dunst's context
        menu, as a user does."""
        with open(self.dmenu_choice, "w") as f:
            f.write(f"[{notification_id},{action}]")
        self.dunstctl("context")

    def history(self):
        """What dunst shows in its history: every notification closed so
        far (close-all first to see the displayed ones too)."""
        data = json.loads(self.dunstctl("history"))
        out = []
        for n in data["data"][0]:
            out.append({k: v["data"] for k, v in n.items()})
        return out

    def screenshot(self, path):
        subprocess.run(["import", "-display", self.display, "-window", "root", path],
                       check=True, timeout=30, capture_output=True)

    def opened_files(self):
        try:
            with open(self.opened) as f:
                return f.read().split()
        except FileNotFoundError:
            return []

    def print_logs(self):
        """The agents' and dunst's logs, for pytest to show when a test
        fails."""
        for i in range(len(self.agents)):
            try:
                print(f"----- safecad-notify log #{i} -----\n{self.agent_log(i)}")
            except OSError:
                pass
        try:
            print(f"----- dunst log -----\n{open(self.dunst_log).read()}")
        except (OSError, AttributeError):
            pass

    def stop(self):
        problems = []
        for proc in self.agents:
            if proc.poll() is None:
                _kill(proc)
            with open(proc.log_path, errors="replace") as f:
                text = f.read()
            try:
                assert_sanitizer_clean(text, "safecad-notify")
            except AssertionError as e:
                problems.append(str(e))
        if self.monitor:
            self.monitor.stop()
        if getattr(self, "plain", None):
            self.plain.stop()
        for proc in reversed(self.procs):
            _kill(proc)
        return problems
