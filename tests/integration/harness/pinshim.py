# SPDX-License-Identifier: LGPL-2.1-or-later
"""The PIN shim (tests/pin-shim): a PKCS#11 module in front of SoftHSM that
adds the user-PIN retry counter, the count-low / final-try / locked flags,
a pulled-token switch SoftHSM lacks, and faults on demand. Its state is
one small text file per token serial in the folder PIN_SHIM_STATE names,
read again by the shim on every call, so a test may read and change it at
any moment:

    tries_left=3 max=3 pulled=0 logins=0 setpins=0 no_counters=0
    wrong_pin_rv=0xA0 must_change=0 fault= faults_left=1 faulted=0
    (one per line)

`use(world)` points a world's daemon at the shim; `PinShim.set(token, …)`
and `.read(token)` change and read a token's counters; `.p11(token, …)`
runs pkcs11-tool through the shim.

Faults: `set_fault(token, "C_Sign", "segv", times=1)` makes the next
`times` calls of C_Sign on the token kill the process that makes them
with SIGSEGV ("abort": SIGABRT; "hang": the call never returns), on
entry, before SoftHSM sees them. `token` None means the module's own
file `_module`, for C_GetSlotList, the one call on no token (see CALLS).
`faulted(token)` counts the faults fired (the shim writes it before it
fires), `clear_fault(token)` takes back one not fired yet."""

import fcntl
import os
import re
import subprocess

import pytest

from .safecad import BUILD_DIR

SHIM = os.environ.get("SAFECAD_PIN_SHIM") or os.path.join(
    BUILD_DIR, "tests", "pin-shim", "libsafecad-pin-shim.so")

CKR_GENERAL_ERROR = 0x5
CKR_PIN_INCORRECT = 0xA0
FIELDS = ("tries_left", "max", "pulled", "logins", "setpins", "no_counters", "wrong_pin_rv",
          "must_change", "fault", "faults_left", "faulted")
DEFAULTS = {"tries_left": 3, "max": 3, "pulled": 0, "logins": 0, "setpins": 0,
            "no_counters": 0, "wrong_pin_rv": CKR_PIN_INCORRECT, "must_change": 0,
            "fault": "", "faults_left": 1, "faulted": 0}
TEXT_FIELDS = ("fault",)

# The calls a fault may be set on (C_GetSlotList only with token None),
# and what it does.
CALLS = ("C_GetSlotList", "C_Login", "C_GenerateKeyPair", "C_Sign", "C_CreateObject",
         "C_GetTokenInfo", "C_FindObjectsInit", "C_OpenSession")
MODULE_CALLS = ("C_GetSlotList",)
KINDS = ("segv", "abort", "hang")
# The file for faults on no token (C_GetSlotList).
MODULE_STATE = "_module"

# What pkcs11-tool -L shows for each flag.
FLAG_TEXT = {"count-low": "user PIN count low", "final-try": "final user PIN try",
             "locked": "user PIN locked"}


def _serial(token):
    """The state file's name: the token's serial, MODULE_STATE for None."""
    return MODULE_STATE if token is None else getattr(token, "serial", token)


class PinShim:
    def __init__(self, directory, softhsm_env):
        if not os.path.exists(SHIM):
            raise AssertionError(
                f"{SHIM} is missing: build it (tests/meson.build has subdir('pin-shim'); "
                "SAFECAD_BUILD_DIR names the build folder, SAFECAD_PIN_SHIM the module)")
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.module = SHIM
        self.env = dict(softhsm_env, PIN_SHIM_STATE=directory)

    def _path(self, token, suffix=""):
        return os.path.join(self.dir, _serial(token) + suffix)

    def read(self, token):
        """The token's counters (the defaults before the shim wrote any);
        token None reads the module's own file."""
        state = dict(DEFAULTS)
        tries_seen = False
        try:
            with open(self._path(token)) as f:
                for line in f:
                    key, sep, value = line.strip().partition("=")
                    if sep and key in TEXT_FIELDS:
                        state[key] = value
                    elif sep and key in state:
                        state[key] = int(value, 0)
                        tries_seen = tries_seen or key == "tries_left"
        except FileNotFoundError:
            pass
        if not tries_seen:
            state["tries_left"] = state["max"]
        return state

    def set(self, token, **values):
        """Changes some counters, under the shim's own lock, atomically;
        returns the new state."""
        unknown = set(values) - set(FIELDS)
        assert not unknown, f"the shim has no {unknown}"
        for key in TEXT_FIELDS:
            assert not any(c.isspace() for c in values.get(key, "")), values[key]
        with open(self._path(token, ".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = self.read(token)
            state.update(values)
            tmp = self._path(token, ".pytmp")
            with open(tmp, "w") as f:
                for key in FIELDS:
                    f.write(f"{key}=0x{state[key]:X}\n" if key == "wrong_pin_rv"
                            else f"{key}={state[key]}\n")
            os.rename(tmp, self._path(token))
        return state

    def logins(self, token):
        return self.read(token)["logins"]

    def set_fault(self, token, call, kind, times=1):
        """The next `times` calls `call` on the token (on no token: None,
        for C_GetSlotList) fail the way `kind` says: "segv" and "abort" kill
        the calling process with SIGSEGV or SIGABRT, "hang" never returns.
        Replaces any fault set before; returns the new state."""
        assert call in CALLS, f"the shim has no fault for {call!r} (it has {CALLS})"
        assert kind in KINDS, f"the shim has no fault {kind!r} (it has {KINDS})"
        assert (token is None) == (call in MODULE_CALLS), \
            f"{call} is on {'no token: token None' if call in MODULE_CALLS else 'a token'}"
        assert times >= 1, times
        return self.set(token, fault=f"{call}:{kind}", faults_left=times)

    def clear_fault(self, token):
        """No fault on the token (None: the module) any more; `faulted`
        keeps its count."""
        return self.set(token, fault="", faults_left=0)

    def faulted(self, token):
        """How many faults fired on the token (None: the module)."""
        return self.read(token)["faulted"]

    def probe_write(self, path):
        """The next C_GetSlotList, in whichever process makes it, tries to
        create `path` for writing; probe_result() says how it went."""
        result = os.path.join(self.dir, "_probe.result")
        if os.path.exists(result):
            os.unlink(result)
        tmp = os.path.join(self.dir, "_probe.pytmp")
        with open(tmp, "w") as f:
            f.write(path + "\n")
        os.rename(tmp, os.path.join(self.dir, "_probe"))

    def probe_result(self):
        """The errno of the last write probe (0: written), None before it
        ran."""
        try:
            with open(os.path.join(self.dir, "_probe.result")) as f:
                key, _, value = f.read().strip().partition("=")
        except FileNotFoundError:
            return None
        assert key == "errno", key
        return int(value)

    def p11(self, token, *args, check=True):
        """pkcs11-tool through the shim, on the token with this label."""
        argv = ["pkcs11-tool", "--module", self.module, "--token-label", token.label]
        argv += list(args)
        r = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"{argv!r} failed ({r.returncode}): {r.stdout}{r.stderr}")
        return r

    def token_flags(self, token):
        """The token flags pkcs11-tool -L shows for the token (None when
        its slot is not listed)."""
        r = subprocess.run(["pkcs11-tool", "--module", self.module, "-L"], env=self.env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"pkcs11-tool -L failed: {r.stdout}{r.stderr}"
        for block in re.split(r"\n(?=Slot \d+)", r.stdout):
            if re.search(rf"^\s*serial num\s*:\s*{re.escape(_serial(token))}\s*$", block, re.M):
                flags = re.search(r"^\s*token flags\s*:\s*(.*)$", block, re.M)
                return [f.strip() for f in flags.group(1).split(",")] if flags else []
        return None


def _with_shim(text):
    return re.sub(r"^(\s*modules\s*=).*$", rf"\1 {SHIM}", text, count=1, flags=re.M)


def use(world):
    """Points the world's daemon at the shim: the `modules` line of every
    safecad.conf the world writes, now or later, names the shim, and every
    process the world starts has PIN_SHIM_STATE. Returns the PinShim."""
    shim = PinShim(os.path.join(world.dir, "pin-shim"), world.softhsm.env)
    conf = os.path.join(world.confdir, "safecad.conf")
    if os.path.exists(conf):
        with open(conf) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(_with_shim(text))

    write_config, base_env = world.write_config, world.base_env

    def write_config_with_shim(text=None, modules=None):
        if text is None:
            return write_config(modules=(SHIM,))
        return write_config(_with_shim(text))

    world.write_config = write_config_with_shim
    world.base_env = lambda: dict(base_env(), PIN_SHIM_STATE=shim.dir)
    world.pin_shim = shim
    return shim


@pytest.fixture
def pin_shim(world):
    """The world's daemon loads the shim (start it after this fixture)."""
    return use(world)
