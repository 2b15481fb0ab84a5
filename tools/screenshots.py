#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Screenshots of safecad-notify and safecad-manager for docs/: the real agent
and window, safecad, SoftHSM
behind the PIN shim, the reference CA, and dunst under Xvfb, in Vietnamese
(a vi_VN.UTF-8 locale built with localedef, the catalogue compiled from
po/vi.po). Each picture is the screen cut to the notifications.

    tools/screenshots.py --build-dir build [--out docs/screenshots] [--lang vi]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_locale(directory, lang):
    """A locale folder and a catalogue folder for lang ("vi" or "en")."""
    if lang == "en":
        return {"LANG": "C.UTF-8"}
    locales = os.path.join(directory, "locale")
    catalogues = os.path.join(directory, "mo")
    os.makedirs(os.path.join(catalogues, "vi", "LC_MESSAGES"))
    os.makedirs(locales)
    subprocess.run(["localedef", "-i", "vi_VN", "-f", "UTF-8",
                    os.path.join(locales, "vi_VN.UTF-8")], check=True)
    subprocess.run(["msgfmt", "-o", os.path.join(catalogues, "vi", "LC_MESSAGES", "safecad.mo"),
                    os.path.join(TOP, "po", "vi.po")], check=True)
    return {"LANG": "vi_VN.UTF-8", "LOCPATH": locales, "SAFECAD_LOCALEDIR": catalogues}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--out", default=os.path.join(TOP, "docs", "screenshots"))
    parser.add_argument("--lang", default="vi", choices=["vi", "en"])
    args = parser.parse_args()
    os.environ["SAFECAD_BUILD_DIR"] = os.path.abspath(args.build_dir)
    sys.path.insert(0, os.path.join(TOP, "tests", "integration"))

    from harness.desktop import Desktop
    from harness.pinshim import use as use_pin_shim
    from harness.pki import PKI
    from harness.refca import PIN, RefCA, check, configure, token_with_pair, window
    from harness.safecad import World

    os.makedirs(args.out, exist_ok=True)
    directory = tempfile.mkdtemp(prefix="scshot-")
    world = desktop = ca = None
    try:
        pki = PKI(os.path.join(directory, "pki"))
        world = World(os.path.join(directory, "world"), pki)
        ca = RefCA(os.path.join(directory, "refca"), pki).start()
        configure(world, ca, timeout=20)
        shim = use_pin_shim(world)
        locale = build_locale(directory, args.lang)
        world.base_env = (lambda base: lambda: dict(base(), **locale))(world.base_env)
        desktop = Desktop(os.path.join(directory, "desktop")).start()

        token, old = token_with_pair(world, pki, label="An Phat 01", days_left=12)
        ca.add_action(old, type="renew",
                      message="Chứng thư số của Quý khách đã được gia hạn thêm 1 năm.",
                      **window(365))
        world.start_daemon()
        check(world, token.serial)
        agent = desktop.start_agent(world, **locale)
        monitor = desktop.monitor

        def shot(name):
            time.sleep(1.0)  # dunst draws on its next frame
            raw = os.path.join(directory, "raw.png")
            desktop.screenshot(raw)
            path = os.path.join(args.out, name)
            subprocess.run(["convert", raw, "-trim", "-bordercolor", "#2d3748", "-border", "12",
                            path], check=True)
            print(path)

        offer = monitor.wait(lambda n: "activate" in n["actions"])
        shot("notify-offer.png")

        desktop.set_pin("000000")
        desktop.invoke(offer["id"], "activate")
        wrong = monitor.wait(lambda n: n["icon"] == "dialog-error", timeout=60)
        shot("notify-wrong-pin.png")

        desktop.set_pin(PIN)
        desktop.invoke(wrong["id"], "activate")
        monitor.wait(lambda n: "export" in n["actions"], timeout=90)
        shot("notify-done-step3.png")
        desktop.stop_agent(agent)

        # The Token Manager window after the renewal, with a second token
        # near its end; the screen cut to the window (at 0,0 without a
        # window manager).
        from harness.manager import ManagerWindow
        desktop.dunstctl("close-all")
        token2, second = token_with_pair(world, pki, label="Binh Minh 02", days_left=9,
                                         key_id="02")
        world.rescan()
        manager = ManagerWindow(world, desktop, **locale).start()
        manager.wait_text("Binh Minh 02")
        manager.wait_text("Bước 3")
        time.sleep(1.0)
        raw = os.path.join(directory, "raw.png")
        desktop.screenshot(raw)
        path = os.path.join(args.out, "manager-tokens.png")
        subprocess.run(["convert", raw, "-crop", "860x620+0+0", "+repage", path], check=True)
        print(path)

        # The activation dialog, TH2: each field old → new, then the issued
        # certificate before it is written (the guide's Confirm).
        subject = [[a, "CÔNG TY CỔ PHẦN BÌNH MINH"] if a == "O" else [a, v]
                   for a, v in second.subject]
        ca.add_action(second, type="change", subject=subject,
                      key={"generate": False, "type": "rsa", "bits": 2048},
                      message="Thay đổi tên doanh nghiệp theo giấy chứng nhận mới.",
                      **window(300))
        check(world, token2.serial)
        manager.click("Kích hoạt…")
        manager.wait_text("Thông tin: hiện tại → mới")

        def dialog_shot(name):
            time.sleep(1.0)
            desktop.screenshot(raw)
            path = os.path.join(args.out, name)
            subprocess.run(["convert", raw, "-crop", "640x600+0+0", "+repage", path],
                           check=True)
            print(path)

        dialog_shot("manager-activate-changes.png")
        manager.click("Chấp nhận")
        manager.wait_text("Nhập mã PIN của USB token")
        manager.click_pointer("text", "Mã PIN")
        manager.type(PIN)
        manager.click("Đăng nhập")
        manager.wait_text("Kiểm tra chứng thư số đã cấp", timeout=90)
        dialog_shot("manager-activate-certificate.png")
        manager.click("Xác nhận")
        manager.wait_text("Đã nạp chứng thư số mới vào USB token", timeout=60)
        manager.click("OK")
        manager.stop()
        manager.close()
        assert shim
        return 0
    finally:
        if desktop:
            desktop.stop()
        if world:
            world.teardown()
        if ca:
            ca.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
