# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Prometheus textfile ([metrics] textfile): what node_exporter's
textfile collector reads, written whole when something changes, and
accepted by `promtool check metrics` after insert, activation, ticks and
removal."""

import datetime
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from harness.refca import (  # noqa: F401 - refca is a fixture
    PIN, SAFECTL, activate, check, refca, token_with_pair, window)
from harness.safecad import config_text, wait_until


def promtool_check(text):
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (prometheus)")
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, f"promtool check metrics: {r.stdout}{r.stderr}\n{text}"


def samples(text):
    """{(name, frozenset(labels)): value}"""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^(\w+)(?:\{(.*)\})? (\S+)$', line)
        assert m, line
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(text, name, **labels):
    want = set(labels.items())
    found = [v for (n, ls), v in samples(text).items() if n == name and want <= set(ls)]
    assert len(found) == 1, f"{name}{labels}: {found}\n{text}"
    return found[0]


class Textfile:
    def __init__(self, world):
        self.dir = os.path.join(world.dir, "node-exporter")
        os.makedirs(self.dir)
        self.path = os.path.join(self.dir, "safecad.prom")
        world.write_config(config_text() + f"[metrics]\ntextfile = {self.path}\n")

    def read(self):
        with open(self.path) as f:
            return f.read()

    def wait(self, predicate, message):
        """The text once predicate(text) holds (the write follows the
        change within the same turn of the daemon's loop)."""
        return wait_until(lambda: os.path.exists(self.path) and predicate(self.read()) and
                          self.read(), message=message)


def test_textfile_follows_insert_activation_ticks_and_removal(hotplug_world, pki, refca):
    w = hotplug_world
    textfile = Textfile(w)
    w.start_daemon()
    text = textfile.wait(lambda t: "safecad_tokens_present 0" in t, "an empty textfile")
    promtool_check(text)
    # Only whole files appear: no temporary file is left beside it.
    assert os.listdir(textfile.dir) == ["safecad.prom"]

    token, old = token_with_pair(w, pki)
    refca.add_action(old, type="renew", **window())
    card = w.insert_card()
    text = textfile.wait(lambda t: "safecad_tokens_present 1" in t, "the token inserted")
    promtool_check(text)
    serial = format(old.cert.serial_number, "x")
    not_after = value(text, "safecad_certificate_not_after_timestamp_seconds",
                      token=token.serial, certificate=serial, profile="SAFE-CA", current="true")
    assert not_after == old.cert.not_valid_after.replace(
        tzinfo=datetime.timezone.utc).timestamp()
    # Days left, as a dashboard reckons it.
    assert (not_after - time.time()) // 86400 == old.days_left()
    assert value(text, "safecad_token_pin_state", token=token.serial, state="ok") == 1
    assert value(text, "safecad_token_pin_state", token=token.serial, state="locked") == 0

    check(w, token.serial)
    text = textfile.wait(lambda t: f'safecad_pending_actions{{token="{token.serial}"}} 1' in t,
                         "the pending action")
    run = activate(w, token.serial)
    assert run.rc == 0, run
    text = textfile.wait(lambda t: "safecad_last_activation_success" in t and
                         f'safecad_pending_actions{{token="{token.serial}"}} 0' in t,
                         "the activation's result")
    promtool_check(text)
    new_serial = refca.requests("issue")[-1]["issued_serial"]
    assert value(text, "safecad_last_activation_success", token=token.serial) == 1
    assert value(text, "safecad_certificate_not_after_timestamp_seconds", token=token.serial,
                 certificate=new_serial, current="true") >= time.time() + 364 * 86400
    rc, out, err = w.safectl("history", json_out=True)
    agencies = json.loads(out)["activations"][0]["agencies"]
    assert value(text, "safecad_agencies_unticked", token=token.serial) == len(agencies)
    assert value(text, "safecad_activation_interrupted", token=token.serial) == 0

    rc, out, err = w.safectl("agencies", "done", "tax")
    assert rc == 0, err
    text = textfile.wait(lambda t: value(t, "safecad_agencies_unticked", token=token.serial)
                         == len(agencies) - 1, "one agency ticked")
    promtool_check(text)

    token.delete()
    card.remove()
    text = textfile.wait(lambda t: "safecad_tokens_present 0" in t, "the token removed")
    promtool_check(text)
    assert token.serial not in text


def test_textfile_is_not_rewritten_when_nothing_changes(world, pki):
    textfile = Textfile(world)
    token_with_pair(world, pki)
    world.start_daemon()
    textfile.wait(lambda t: "safecad_tokens_present 1" in t, "the textfile")
    time.sleep(2)  # the check made at start has ended
    before = os.stat(textfile.path).st_mtime_ns
    rc, out, err = world.safectl("status")
    assert rc == 0, err
    time.sleep(1.5)
    assert os.stat(textfile.path).st_mtime_ns == before


def test_a_label_that_needs_escaping(world, pki):
    textfile = Textfile(world)
    token_with_pair(world, pki, label='A "quoted" \\ label')
    world.start_daemon()
    text = textfile.wait(lambda t: "safecad_tokens_present 1" in t, "the textfile")
    promtool_check(text)
    assert 'label="A \\"quoted\\" \\\\ label"' in text, text


@pytest.mark.parametrize("setting", ["relative/safecad.prom", "/tmp/safecad.txt"])
def test_a_bad_textfile_setting_is_refused(world, setting):
    world.write_config(config_text() + f"[metrics]\ntextfile = {setting}\n")
    daemon = world.start_daemon(wait=False)
    assert daemon.wait_exit(timeout=20) != 0
    daemon.checked = True
    assert "[metrics] textfile" in daemon.log()
