# SPDX-License-Identifier: LGPL-2.1-or-later
"""Vietnamese under a real vi_VN.UTF-8 locale (PRODUCT.md, "Languages"):
po/vi.po compiled with msgfmt into a folder of its own (SAFECAD_LOCALEDIR),
the locale built with localedef (LOCPATH). safectl speaks Vietnamese under
LANG=vi_VN.UTF-8 and English under C.UTF-8; a daemon started under
vi_VN.UTF-8 sends its errors to callers in Vietnamese while its log stays
English; --json prints the same bytes in both locales."""

import os
import re
import subprocess
import unicodedata


from harness.refca import (  # noqa: F401 - refca is a fixture
    PIN, _pin_fd, refca, token_with_pair, window)
from harness.safecad import SAFECTL, assert_sanitizer_clean

VI_LOCALE = "vi_VN.UTF-8"
# The columns where status puts a value after its label (two blanks, 13
# columns of label, one blank).
STATUS_VALUE_COLUMN = 16


def english(vi_env):
    """The same environment, English: C.UTF-8 finds no catalogue even with
    the folder set."""
    return dict(vi_env, LANG="C.UTF-8")


def safectl(world, env, *args, pin=None):
    """safectl with the world's environment and env on top: (rc, out, err)."""
    full = dict(world.client_env(), **env)
    argv = [SAFECTL] + list(args)
    fds = ()
    if pin is not None:
        fd = _pin_fd(pin)
        fds = (fd,)
        argv += ["--pin-fd", str(fd)]
    try:
        r = subprocess.run(argv, env=full, capture_output=True, timeout=90,
                           stdin=subprocess.DEVNULL, pass_fds=fds)
    finally:
        for fd in fds:
            os.close(fd)
    out, err = r.stdout.decode(), r.stderr.decode()
    assert_sanitizer_clean(err, f"safectl {' '.join(args)}")
    return r.returncode, out, err


# Letters only Vietnamese writes (precomposed): with a dot below, a hook
# above, a horn, or đ.
VIETNAMESE_LETTERS = re.compile("[ạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹđơư]", re.I)


def has_vietnamese(text):
    return unicodedata.normalize("NFC", text) == text and VIETNAMESE_LETTERS.search(text)


def options(text):
    return sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", text)))


def test_help_speaks_vietnamese_and_keeps_commands_and_options(world, vi_env):
    rc, vi, err = safectl(world, vi_env, "--help")
    assert rc == 0, err
    rc, en, err = safectl(world, english(vi_env), "--help")
    assert rc == 0, err
    assert "Commands:" in en and "Options:" in en, en
    assert "Lệnh:" in vi and "Tùy chọn:" in vi and "chứng thư số" in vi, vi
    assert has_vietnamese(vi) and not has_vietnamese(en)
    # Commands and options are not translated.
    assert options(vi) == options(en), (options(vi), options(en))
    commands = re.findall(r"^  ([a-z][a-z-]+)", en.split("Options:")[0], re.M)
    for command in commands:
        assert re.search(rf"^  {command}\b", vi, re.M), f"{command} missing:\n{vi}"


def test_status_without_the_daemon(world, vi_env):
    rc, out, err = safectl(world, vi_env, "status")
    assert rc == 1, out + err
    assert "Dịch vụ safecad không chạy" in err, err
    rc, out, err = safectl(world, english(vi_env), "status")
    assert rc == 1, out + err
    assert "safecad is not running" in err, err


def test_status_and_show_in_vietnamese_line_up_and_json_is_the_same(world, pki, vi_env):
    token, _ = token_with_pair(world, pki, label="Công ty An Phát", days_left=20.5)
    world.start_daemon()

    rc, vi, err = safectl(world, vi_env, "status")
    assert rc == 0, err
    assert "Chứng thư số:" in vi and "còn 20 ngày" in vi and "gia hạn" in vi, vi
    assert "Nhà cung cấp: SAFE-CA" in vi, vi
    # Labels of two- and three-byte letters still put every value in one
    # column.
    labelled = [line for line in vi.splitlines() if re.match(r"  \S.*?: ", line)]
    assert len(labelled) >= 6, vi
    for line in labelled:
        label = re.match(r"  (\S.*?:) +", line)
        assert label.end() == STATUS_VALUE_COLUMN, f"value not in column {STATUS_VALUE_COLUMN}: {line!r}"

    rc, en, err = safectl(world, english(vi_env), "status")
    assert rc == 0, err
    assert "Certificate:" in en and "20 days left" in en, en

    rc, vi, err = safectl(world, vi_env, "show")
    assert rc == 0, err
    assert "(hiện tại)" in vi and "Đơn vị cấp:" in vi, vi

    for args in (["status"], ["show"], ["show", token.serial], ["pin"], ["history"]):
        rc_vi, out_vi, err_vi = safectl(world, vi_env, "--json", *args)
        rc_en, out_en, err_en = safectl(world, english(vi_env), "--json", *args)
        assert rc_vi == rc_en == 0, (args, err_vi, err_en)
        assert out_vi == out_en, f"--json {' '.join(args)} differs:\n{out_vi}\n{out_en}"
        assert out_vi.strip().startswith("{"), out_vi


def test_a_daemon_under_vietnamese_answers_in_vietnamese_and_logs_in_english(world, pki, vi_env):
    """The CA cannot be reached (the default profile points at port 1):
    the daemon's error, its reason and the support line reach safectl in
    the daemon's language; safectl's own words follow safectl's."""
    token, _ = token_with_pair(world, pki)
    daemon = world.start_daemon(**vi_env)

    rc, out, err = safectl(world, vi_env, "check", token.serial)
    assert rc == 5, out + err
    assert "Không hỏi được nhà cung cấp dịch vụ chứng thực: " in err, err
    assert "Không kết nối được với nhà cung cấp dịch vụ chứng thực (kết nối bị từ chối)" in err, err
    assert "Hỗ trợ: 1900 6154" in err, err

    # safectl in English, the daemon still in Vietnamese.
    rc, out, err = safectl(world, english(vi_env), "check", token.serial)
    assert rc == 5, out + err
    assert "Failed to ask the CA: Không kết nối được" in err, err

    # Refused by polkit (none runs here), or, for root, nothing to tick.
    rc, out, err = safectl(world, vi_env, "agencies", "done", "tax")
    assert rc != 0, out + err
    assert ("Không đánh dấu được các cơ quan: Không được phép" in err
            or "Không đánh dấu được các cơ quan: Chưa có lần kích hoạt nào" in err), err

    log = daemon.log()
    assert re.search(r"safecad \S+ ready: 1 token\(s\)", log), log
    assert re.search(r"Asking the CA about token \S+ failed: ", log), log


def test_an_english_daemon_answers_in_english(world, pki, vi_env):
    token, _ = token_with_pair(world, pki)
    world.start_daemon(**english(vi_env))
    rc, out, err = safectl(world, english(vi_env), "check", token.serial)
    assert rc == 5, out + err
    assert "Failed to ask the CA: The CA could not be reached (connection refused)" in err, err
    assert "Support: 1900 6154" in err and not has_vietnamese(err.split("Support:")[0]), err


def test_wrong_pin_and_unknown_action_reach_safectl_in_vietnamese(world, pki, refca, vi_env):
    token, old = token_with_pair(world, pki)
    action = refca.add_action(old, **window())
    world.start_daemon(**vi_env)

    rc, out, err = safectl(world, vi_env, "activate", token.serial, "no-such-action", "--yes",
                           pin=PIN)
    assert rc == 2, out + err
    assert (f"Không kích hoạt được: Nhà cung cấp dịch vụ chứng thực không có yêu cầu "
            f"\"no-such-action\" nào đang chờ cho USB token {token.serial}.") in err, err

    rc, out, err = safectl(world, vi_env, "activate", token.serial, action["id"], "--yes",
                           pin="Sai-000000")
    assert rc == 3, out + err
    # SoftHSM says "count low" after a wrong PIN.
    wrong = rf"Sai mã PIN của USB token {token.serial}(: không còn nhiều lần thử)?\."
    assert re.search("Không kích hoạt được: " + wrong, err), err

    rc, out, err = safectl(world, english(vi_env), "activate", token.serial, action["id"],
                           "--yes", pin="Sai-000000")
    assert rc == 3, out + err
    assert re.search("Failed to activate: " + wrong, err), err
    assert refca.requests("issue") == [], "a wrong PIN reached the CA"


def test_the_daemon_log_stays_english_under_vietnamese(world, vi_env):
    """%m in a log line is strerror(), which follows LC_MESSAGES: glibc has
    Vietnamese for it, the log must not."""
    os.unlink(world.write_config())
    os.mkdir(os.path.join(world.confdir, "safecad.conf"))
    daemon = world.start_daemon(wait=False, **vi_env)
    rc = daemon.wait_exit(timeout=20)
    log = daemon.log()
    daemon.checked = True
    daemon.close()
    assert rc != 0, log
    assert re.search(r"Failed to read \S+safecad\.conf: Is a directory", log), log
    assert not has_vietnamese(log), log
    assert_sanitizer_clean(log, "safecad")
