# SPDX-License-Identifier: LGPL-2.1-or-later
"""A card that makes keys: IsoApplet's command set in vpcd's reader.

IsoApplet is the open Java Card applet that OpenSC's `isoApplet` card driver
and its pkcs15-init profile talk to. This emulator follows the applet's
legacy branch (API 00.06, the one Debian 12's OpenSC 0.23 speaks): an ISO
7816-4 file system whose files keep the FCI the host sent, one PIN (3 tries)
and an optional 16-byte PUK, 16 key slots, RSA-2048 keys made on the card
(PKCS#1 v1.5 signatures and decryption), short APDUs with GET RESPONSE and
command chaining. The applet can do EC on most cards; this one reports no EC,
so OpenSC offers RSA-2048 only, like a card without ECDSA.

What the card holds (files, PIN and PUK with their counters, keys) is kept in
a JSON file, written after every command that changes it, so it survives
removal, re-insertion and a new IsoAppletCard on the same file. What a real
card keeps in RAM (the login, the selected file, the security environment,
a pending GET RESPONSE) is lost on every power-off, reset or removal.

Capacity is modelled on a small Java Card: an EEPROM budget that files and
keys draw on (CREATE FILE and GENERATE then answer 6A84), besides the
applet's own limits (16 key slots, 30 files per folder).
"""

import json
import os
import secrets
import socket
import struct
import subprocess
import threading

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .pcsc import VpcdCard

AID = bytes.fromhex("F276A288BCFBA69D34F31001")
API_VERSION = (0x00, 0x06)
FEATURE_EXT_APDU = 0x01
FEATURE_SECURE_RANDOM = 0x02
FEATURE_ECC = 0x04

# A T=1 Java Card ATR (historical bytes "IsoApplet"); TCK appended below.
_ATR_BODY = bytes.fromhex("3B8980014973" "6F4170706C6574")


def _with_tck(atr):
    tck = 0
    for b in atr[1:]:
        tck ^= b
    return atr + bytes([tck])


ATR = _with_tck(_ATR_BODY)

PIN_MAX_TRIES = 3
PIN_MIN_LENGTH = 4
PIN_MAX_LENGTH = 16
PUK_MAX_TRIES = 5
PUK_LENGTH = 16
KEY_MAX_COUNT = 16
CHILDREN_MAX = 30
RAM_BUF_SIZE = 660

ALG_GEN_RSA_2048 = 0xF3
ALG_RSA_PAD_PKCS1 = 0x11
ALG_GEN_EC = 0xEC
ALG_ECDSA_SHA1 = 0x21

STATE_CREATION = 0x00
STATE_INITIALISATION = 0x01
STATE_OPERATIONAL = 0x05

# The EEPROM a file or key takes: the data, the FCI, and the Java objects
# around them. An RSA-2048 CRT private key is five 128-byte numbers; the
# public half made with it stays until the card collects garbage.
FILE_OVERHEAD = 48
KEY_COST = 5 * 128 + 256 + 3 + 96
# Free EEPROM after the applet is installed: what a 40 KB card has left.
DEFAULT_MEMORY = 12 * 1024

INS = {
    "select": 0xA4, "read_binary": 0xB0, "update_binary": 0xD6, "create_file": 0xE0,
    "delete_file": 0xE4, "verify": 0x20, "change_reference_data": 0x24,
    "reset_retry_counter": 0x2C, "manage_security_environment": 0x22,
    "perform_security_operation": 0x2A, "generate": 0x46, "get_response": 0xC0,
    "put_data": 0xDB, "get_challenge": 0x84,
}

SW_OK = 0x9000


class CardError(Exception):
    def __init__(self, sw):
        super().__init__(f"{sw:04X}")
        self.sw = sw


def _fail(sw):
    raise CardError(sw)


def _tlv_find(data, tag):
    """The value of the first top-level one-byte `tag` in a BER-TLV list, or
    None; raises CardError(6A80) on a malformed list."""
    pos = 0
    while pos < len(data):
        t = data[pos]
        pos += 1
        if t & 0x1F == 0x1F:
            while pos < len(data) and data[pos] & 0x80:
                pos += 1
            pos += 1
        length, pos = _tlv_length(data, pos)
        if pos + length > len(data):
            _fail(0x6A80)
        if t == tag:
            return data[pos:pos + length]
        pos += length
    return None


def _tlv_length(data, pos):
    if pos >= len(data):
        _fail(0x6A80)
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    n = first & 0x7F
    if n not in (1, 2) or pos + 1 + n > len(data):
        _fail(0x6A80)
    return int.from_bytes(data[pos + 1:pos + 1 + n], "big"), pos + 1 + n


def _tag_len(length):
    if length < 0x80:
        return bytes([length])
    if length < 0x100:
        return bytes([0x81, length])
    return bytes([0x82]) + length.to_bytes(2, "big")


class Apdu:
    """A command APDU, short or extended (ISO 7816-3 cases 1 to 4)."""

    def __init__(self, raw):
        if len(raw) < 4:
            _fail(0x6700)
        self.raw = raw
        self.cla, self.ins, self.p1, self.p2 = raw[0], raw[1], raw[2], raw[3]
        body = raw[4:]
        self.data = b""
        self.le = 0
        if len(body) == 0:
            return
        if len(body) == 1:
            self.le = body[0] or 256
            return
        if body[0] == 0 and len(body) >= 3:
            n = int.from_bytes(body[1:3], "big")
            if len(body) == 3:
                self.le = n or 65536
                return
            self.data = body[3:3 + n]
            rest = body[3 + n:]
            if len(self.data) != n or len(rest) not in (0, 2):
                _fail(0x6700)
            if rest:
                self.le = int.from_bytes(rest, "big") or 65536
            return
        n = body[0]
        self.data = body[1:1 + n]
        rest = body[1 + n:]
        if len(self.data) != n or len(rest) > 1:
            _fail(0x6700)
        if rest:
            self.le = rest[0] or 256

    @property
    def chained(self):
        return bool(self.cla & 0x10)


class IsoApplet:
    """The applet: card state in `state` (saved to `path`), RAM state in
    attributes that `power_off()` clears."""

    def __init__(self, path, memory=DEFAULT_MEMORY, features=FEATURE_SECURE_RANDOM):
        self.path = path
        self.memory = memory
        self.features = features
        self.lock = threading.RLock()
        self.state = self._load()
        self.generated = 0
        self.power_off()

    # --- persistent state ---------------------------------------------------
    def _blank(self):
        mf_fci = bytes.fromhex("6F07820138" "83023F00")
        return {
            "version": 1,
            "lifecycle": STATE_CREATION,
            "pin": None, "pin_tries": PIN_MAX_TRIES,
            "puk": None, "puk_tries": PUK_MAX_TRIES,
            "mf": {"fid": 0x3F00, "fci": mf_fci.hex(), "df": True, "children": []},
            "keys": {},
        }

    def _load(self):
        try:
            with open(self.path) as f:
                return json.load(f)
        except FileNotFoundError:
            state = self._blank()
            self._write(state)
            return state

    def _write(self, state):
        tmp = self.path + ".new"
        with open(tmp, "w") as f:
            json.dump(state, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def save(self):
        self._write(self.state)

    def reload(self):
        with self.lock:
            self.state = self._load()

    # --- RAM state ------------------------------------------------------------
    def power_off(self):
        """A power-off, a reset or a removal: what a card keeps in RAM is gone
        and no applet is selected."""
        with self.lock:
            self.selected = False
            self._deselect()

    def _deselect(self):
        self.pin_validated = False
        self.user_authenticated = False
        self.current_df = [self.state["mf"]]   # the path from the MF
        self.current_ef = None
        self.alg_ref = 0
        self.key_ref = -1
        self.pending = b""                      # GET RESPONSE data
        self.chain = None                       # (ins, p1p2, data so far)

    def _select_applet(self):
        self._deselect()
        self.selected = True
        self.user_authenticated = self.state["lifecycle"] in (STATE_CREATION,
                                                               STATE_INITIALISATION)

    # --- capacity -------------------------------------------------------------
    def _file_cost(self, node):
        cost = FILE_OVERHEAD + len(bytes.fromhex(node["fci"]))
        if node["df"]:
            cost += sum(self._file_cost(c) for c in node["children"])
        else:
            cost += len(node["data"]) // 2
        return cost

    def used(self):
        """EEPROM bytes taken by files and keys."""
        return self._file_cost(self.state["mf"]) + KEY_COST * len(self.state["keys"])

    def free(self):
        return self.memory - self.used()

    # --- dispatch ---------------------------------------------------------------
    def process(self, raw):
        """One command APDU in, one response APDU (data + SW) out."""
        with self.lock:
            try:
                return self._process(raw)
            except CardError as e:
                return struct.pack(">H", e.sw)

    def _process(self, raw):
        apdu = Apdu(raw)
        if (apdu.ins == 0xA4 and apdu.p1 == 0x04 and apdu.data
                and AID.startswith(apdu.data) and len(apdu.data) >= 5):
            self._select_applet()
            return bytes([API_VERSION[0], API_VERSION[1], self.features]) + b"\x90\x00"
        if not self.selected:
            # The card manager answers; it knows none of these.
            _fail(0x6A82 if apdu.ins == 0xA4 else 0x6D00)
        if apdu.cla & 0x0C:
            _fail(0x6882)
        if apdu.cla & 0x80:
            _fail(0x6E00)
        self._check_chain(apdu)
        if self.pending and apdu.ins != 0xC0:
            _fail(0x6900)
        handler = {
            0xA4: self._select_file, 0xB0: self._read_binary, 0xD6: self._update_binary,
            0xE0: self._create_file, 0xE4: self._delete_file, 0x20: self._verify,
            0x24: self._change_reference_data, 0x2C: self._reset_retry_counter,
            0x22: self._manage_security_environment, 0x2A: self._perform_security_operation,
            0x46: self._generate, 0xC0: self._get_response, 0xDB: self._put_data,
            0x84: self._get_challenge,
        }.get(apdu.ins)
        if handler is None:
            _fail(0x6D00)
        return handler(apdu)

    def _check_chain(self, apdu):
        if self.chain is None and not apdu.chained:
            return
        if self.chain is None:
            if apdu.ins not in (0x2A, 0x46, 0xDB):
                _fail(0x6884)
            self.chain = (apdu.ins, (apdu.p1, apdu.p2), b"")
        elif self.chain[:2] != (apdu.ins, (apdu.p1, apdu.p2)):
            _fail(0x6900)

    def _chained_data(self, apdu):
        """The whole data field of a command that may come in a chain, or
        None while the chain goes on (the caller answers 9000)."""
        ins, p1p2, data = self.chain if self.chain else (apdu.ins, None, b"")
        data += apdu.data
        if len(data) > RAM_BUF_SIZE:
            self.chain = None
            _fail(0x6700)
        if apdu.chained:
            self.chain = (ins, p1p2, data)
            return None
        self.chain = None
        return data

    def _send_large(self, data):
        if len(data) <= 256:
            self.pending = b""
            return data + b"\x90\x00"
        self.pending = data[256:]
        rest = min(len(self.pending), 256)
        return data[:256] + bytes([0x61, rest & 0xFF])

    def _get_response(self, apdu):
        if not self.pin_validated:
            _fail(0x6982)
        if not self.pending:
            _fail(0x6985)
        expected = min(len(self.pending), 256)
        if apdu.le != expected:
            _fail(0x6C00 | (expected & 0xFF))
        data, self.pending = self.pending, b""
        return self._send_large(data)

    # --- files -------------------------------------------------------------------
    @staticmethod
    def _fci_acl(node, op):
        """The security condition byte for `op` (ISO 7816-4 table 20), from
        the FCI's tag 86 as IsoApplet reads it; 0 when there is none."""
        fci = bytes.fromhex(node["fci"])
        acl = _tlv_find(fci[2:], 0x86) if len(fci) > 2 else None
        if acl is None or len(acl) != 8:
            return 0x00
        index = {"delete_self": 1, "write": 5, "create_df": 5, "update": 6,
                 "create_ef": 6, "read": 7, "delete_child": 7}[op]
        return acl[index]

    def _authorize(self, node, op):
        if node is None:
            return
        acl = self._fci_acl(node, op)
        if acl == 0x00:
            return
        if (acl == 0x90 or acl & 0x9F == 0x10) and self.user_authenticated:
            return
        _fail(0x6982)

    def _find(self, fid, kind="any", start=None):
        """Depth-first, as the applet searches: (node, path of DFs to it)."""
        start = start or [self.state["mf"]]
        root = start[-1]
        if root["fid"] == fid and kind != "ef" and len(start) == 1:
            return root, start[:-1]

        def walk(df, path):
            for child in df["children"]:
                if child["fid"] == fid:
                    if kind == "any" or (kind == "df") == child["df"]:
                        return child, path
                    raise KeyError(fid)
                if child["df"]:
                    try:
                        return walk(child, path + [child])
                    except KeyError:
                        pass
            raise KeyError(fid)
        return walk(root, list(start))

    def _find_path(self, df_path, path):
        df = df_path[-1]
        trail = list(df_path)
        if len(path) < 2 or len(path) % 2:
            raise KeyError(path)
        for i in range(0, len(path), 2):
            fid = int.from_bytes(path[i:i + 2], "big")
            child = next((c for c in df["children"] if c["fid"] == fid), None)
            if child is None:
                raise KeyError(path)
            if i == len(path) - 2:
                return child, trail
            if not child["df"]:
                raise KeyError(path)
            df = child
            trail = trail + [child]

    def _find_name(self, name):
        def walk(df, path):
            for child in df["children"]:
                if not child["df"]:
                    continue
                fci = bytes.fromhex(child["fci"])
                if _tlv_find(fci[2:], 0x84) == name:
                    return child, path
                try:
                    return walk(child, path + [child])
                except KeyError:
                    pass
            raise KeyError(name)
        mf = self.state["mf"]
        if _tlv_find(bytes.fromhex(mf["fci"])[2:], 0x84) == name:
            return mf, []
        return walk(mf, [mf])

    def _select(self, node, parents):
        if node["df"]:
            self.current_df = parents + [node]
        else:
            self.current_df = parents
            self.current_ef = node

    def _select_file(self, apdu):
        if apdu.p2 & 0xF3:
            _fail(0x6A86)
        data = apdu.data
        try:
            if apdu.p1 == 0x00:
                if not data:
                    node, parents = self.state["mf"], []
                elif len(data) == 2:
                    node, parents = self._find(int.from_bytes(data, "big"))
                else:
                    _fail(0x6A82)
            elif apdu.p1 in (0x01, 0x02) and len(data) == 2:
                node, parents = self._find(int.from_bytes(data, "big"),
                                           "df" if apdu.p1 == 0x01 else "ef",
                                           self.current_df)
            elif apdu.p1 == 0x03:
                if data or len(self.current_df) < 2:
                    _fail(0x6A82)
                node, parents = self.current_df[-2], self.current_df[:-2]
            elif apdu.p1 == 0x04:
                node, parents = self._find_name(data)
            elif apdu.p1 == 0x08:
                node, parents = self._find_path([self.state["mf"]], data)
            elif apdu.p1 == 0x09:
                node, parents = self._find_path(self.current_df, data)
            else:
                _fail(0x6A86)
        except KeyError:
            _fail(0x6A82)
        self._select(node, parents)
        if apdu.p2 & 0x0C in (0x00, 0x04):
            return bytes.fromhex(node["fci"]) + b"\x90\x00"
        if apdu.p2 & 0x0C == 0x08:
            _fail(0x6A86)
        return b"\x90\x00"

    def _ef_for(self, apdu):
        if apdu.p1 & 0x80:
            # Short file identifiers: IsoApplet's files have none.
            _fail(0x6A82 if apdu.p1 & 0xE0 == 0x80 else 0x6A86)
        return self.current_ef, ((apdu.p1 & 0x7F) << 8) | apdu.p2

    def _read_binary(self, apdu):
        ef, offset = self._ef_for(apdu)
        self._authorize(ef, "read")
        if ef is None or ef["df"]:
            _fail(0x6981)
        data = bytes.fromhex(ef["data"])
        if offset >= len(data):
            _fail(0x6B00)
        le = apdu.le or 256
        return data[offset:offset + le] + b"\x90\x00"

    def _update_binary(self, apdu):
        ef, offset = self._ef_for(apdu)
        self._authorize(ef, "update")
        if ef is None or ef["df"]:
            _fail(0x6981)
        data = bytearray(bytes.fromhex(ef["data"]))
        if offset + len(apdu.data) > len(data):
            _fail(0x6B00)
        data[offset:offset + len(apdu.data)] = apdu.data
        ef["data"] = bytes(data).hex()
        self.save()
        return b"\x90\x00"

    def _create_file(self, apdu):
        if apdu.p1 or apdu.p2:
            _fail(0x6A86)
        fci = apdu.data
        if len(fci) < 2 or fci[0] not in (0x62, 0x6F):
            _fail(0x6A80)
        inner_len, start = _tlv_length(fci, 1)
        if start + inner_len != len(fci):
            _fail(0x6A80)
        inner = fci[start:]
        fid_bytes = _tlv_find(inner, 0x83)
        descriptor = _tlv_find(inner, 0x82)
        acl = _tlv_find(inner, 0x86)
        if fid_bytes is None or len(fid_bytes) != 2 or not descriptor or len(descriptor) > 6:
            _fail(0x6A80)
        if acl is not None and len(acl) != 8:
            _fail(0x6A80)
        fid = int.from_bytes(fid_bytes, "big")
        try:
            self._find(fid)
            _fail(0x6A80)          # file identifiers are unique on this card
        except KeyError:
            pass
        parent = self.current_df[-1]
        fd = descriptor[0]
        if fd & 0x3F == 0x38:
            self._authorize(parent, "create_df")
            node = {"fid": fid, "fci": fci.hex(), "df": True, "children": []}
        elif fd & 0x30 == 0 and fd & 0x07 == 0x01:
            self._authorize(parent, "create_ef")
            size = _tlv_find(inner, 0x81)
            if size is None:
                size = 128
            elif len(size) in (1, 2):
                size = int.from_bytes(size, "big")
            else:
                _fail(0x6A80)
            node = {"fid": fid, "fci": fci.hex(), "df": False, "data": bytes(size).hex()}
        else:
            # Record files exist in the applet but OpenSC never makes them.
            _fail(0x6A80)
        if len(parent["children"]) >= CHILDREN_MAX:
            _fail(0x6A84)
        if self._file_cost(node) > self.free():
            _fail(0x6A84)
        parent["children"].append(node)
        self._select(node, list(self.current_df))
        self.save()
        return b"\x90\x00"

    def _delete_file(self, apdu):
        if apdu.p1 or apdu.p2:
            _fail(0x6A86)
        if len(apdu.data) != 2:
            _fail(0x6700)
        fid = int.from_bytes(apdu.data, "big")
        try:
            node, parents = self._find(fid)
        except KeyError:
            _fail(0x6A82)
        if node is self.state["mf"]:
            _fail(0x6986)
        self._authorize(node, "delete_self")
        parent = parents[-1]
        self.current_df = parents
        self.current_ef = None
        parent["children"].remove(node)
        self.save()
        return b"\x90\x00"

    # --- PIN and PUK ---------------------------------------------------------------
    @staticmethod
    def _pad(value):
        return value + bytes(PIN_MAX_LENGTH - len(value))

    def _pin_check(self, value):
        """OwnerPIN.check: counts down first, resets on success."""
        st = self.state
        if st["pin_tries"] == 0:
            return False
        st["pin_tries"] -= 1
        ok = secrets.compare_digest(self._pad(value), bytes.fromhex(st["pin"]))
        if ok:
            st["pin_tries"] = PIN_MAX_TRIES
        self.save()
        return ok

    def _verify(self, apdu):
        if apdu.p1 != 0x00 or apdu.p2 != 0x01:
            _fail(0x6A86)
        n = len(apdu.data)
        if (n > 0 and n < PIN_MIN_LENGTH) or n > PIN_MAX_LENGTH:
            _fail(0x6700)
        operational = self.state["lifecycle"] not in (STATE_CREATION, STATE_INITIALISATION)
        if n == 0:
            if operational:
                if self.pin_validated:
                    return b"\x90\x00"
                _fail(0x63C0 | self.state["pin_tries"])
            return b"\x90\x00"
        if not operational:
            # No PIN is set: OwnerPIN.check on an empty PIN fails.
            _fail(0x63C0 | self.state["pin_tries"])
        if not self._pin_check(apdu.data):
            self.pin_validated = False
            self.user_authenticated = False
            _fail(0x63C0 | self.state["pin_tries"])
        self.pin_validated = True
        self.user_authenticated = True
        return b"\x90\x00"

    def _set_pin(self, value):
        if len(value) > PIN_MAX_LENGTH or len(value) < PIN_MIN_LENGTH:
            _fail(0x6700)
        self.state["pin"] = self._pad(value).hex()
        self.state["pin_tries"] = PIN_MAX_TRIES
        self.state["lifecycle"] = STATE_OPERATIONAL

    def _change_reference_data(self, apdu):
        st = self.state
        data = apdu.data
        if st["lifecycle"] == STATE_CREATION:
            if apdu.p1 != 0x01 or apdu.p2 not in (0x01, 0x02):
                _fail(0x6A86)
            if apdu.p2 == 0x02:
                if len(data) != PUK_LENGTH:
                    _fail(0x6700)
                st["puk"] = data.hex()
                st["puk_tries"] = PUK_MAX_TRIES
                st["lifecycle"] = STATE_INITIALISATION
            else:
                self._set_pin(data)
        elif st["lifecycle"] == STATE_INITIALISATION:
            if apdu.p1 != 0x01 or apdu.p2 != 0x01:
                _fail(0x6A86)
            self._set_pin(data)
        else:
            if apdu.p1 != 0x00 or apdu.p2 != 0x01:
                _fail(0x6A86)
            if len(data) != 2 * PIN_MAX_LENGTH:
                _fail(0x6700)
            if not self._pin_check(data[:PIN_MAX_LENGTH]):
                _fail(0x63C0 | st["pin_tries"])
            st["pin"] = data[PIN_MAX_LENGTH:].hex()
        self.save()
        return b"\x90\x00"

    def _reset_retry_counter(self, apdu):
        st = self.state
        if st["lifecycle"] != STATE_OPERATIONAL:
            _fail(0x6986)
        data = apdu.data
        if len(data) < PUK_LENGTH + PIN_MIN_LENGTH or len(data) > PUK_LENGTH + PIN_MAX_LENGTH:
            _fail(0x6700)
        if apdu.p1 != 0x00 or apdu.p2 != 0x01:
            _fail(0x6A86)
        if st["puk"] is None:
            _fail(0x63C0)
        if st["puk_tries"] == 0:
            _fail(0x63C0)
        st["puk_tries"] -= 1
        if not secrets.compare_digest(data[:PUK_LENGTH], bytes.fromhex(st["puk"])):
            self.save()
            _fail(0x63C0 | st["puk_tries"])
        st["puk_tries"] = PUK_MAX_TRIES
        st["pin"] = self._pad(data[PUK_LENGTH:]).hex()
        st["pin_tries"] = PIN_MAX_TRIES
        self.save()
        return b"\x90\x00"

    # --- keys ------------------------------------------------------------------------
    def _key(self, ref):
        pem = self.state["keys"].get(str(ref))
        if pem is None:
            return None
        return serialization.load_pem_private_key(pem.encode(), password=None)

    def public_key(self, ref):
        """The public half of the key in slot `ref`, or None."""
        key = self._key(ref)
        return key.public_key() if key else None

    def _manage_security_environment(self, apdu):
        if not self.pin_validated:
            _fail(0x6982)
        data = apdu.data
        if apdu.p1 == 0x41:
            alg = _tlv_find(data, 0x80)
            ref = _tlv_find(data, 0x84)
            if alg is None or len(alg) != 1 or ref is None or len(ref) != 1:
                _fail(0x6984)
            if ref[0] >= KEY_MAX_COUNT:
                _fail(0x6984)
            alg, ref = alg[0], ref[0]
        elif apdu.p1 == 0xF3:
            alg, ref = 0, -1
        else:
            _fail(0x6A81)
        key = self._key(ref) if ref >= 0 else None
        if apdu.p2 == 0x00:
            if alg == ALG_GEN_EC and not self.features & FEATURE_ECC:
                _fail(0x6A81)
            if alg not in (ALG_GEN_RSA_2048, ALG_GEN_EC):
                _fail(0x6A81)
            if ref < 0:
                _fail(0x6984)
        elif apdu.p2 in (0xB6, 0xB8):
            if ref < 0:
                _fail(0x6984)
            if alg == ALG_ECDSA_SHA1 and apdu.p2 == 0xB6:
                _fail(0x6A81 if not self.features & FEATURE_ECC else 0x6984)
            if alg != ALG_RSA_PAD_PKCS1:
                _fail(0x6A81)
            if key is None:
                # keys[ref].getType() on an empty slot: a NullPointerException.
                _fail(0x6F00)
        else:
            _fail(0x6A81)
        self.alg_ref, self.key_ref = alg, ref
        return b"\x90\x00"

    def _generate(self, apdu):
        if not self.pin_validated:
            _fail(0x6982)
        if self.alg_ref != ALG_GEN_RSA_2048:
            _fail(0x6985)
        if apdu.p1 != 0x42 or apdu.p2 != 0x00:
            _fail(0x6A86)
        if apdu.chained:
            self.chain = None
            _fail(0x6884)
        # new KeyPair() comes before the old key is cleared: the card needs
        # room for one more key even when the slot is taken.
        if KEY_COST > self.free():
            _fail(0x6A84)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.state["keys"][str(self.key_ref)] = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode()
        self.generated += 1
        self.save()
        n = key.public_key().public_numbers().n.to_bytes(256, "big")
        body = b"\x81\x82\x01\x00" + n + b"\x82\x03" + (65537).to_bytes(3, "big")
        return self._send_large(b"\x7F\x49" + _tag_len(len(body)) + body)

    def _perform_security_operation(self, apdu):
        if not self.pin_validated:
            self.chain = None
            _fail(0x6982)
        if (apdu.p1, apdu.p2) == (0x9E, 0x9A):
            return self._sign(apdu)
        if (apdu.p1, apdu.p2) == (0x80, 0x86):
            return self._decipher(apdu)
        self.chain = None
        _fail(0x6A86)

    def _sign(self, apdu):
        if self.alg_ref != ALG_RSA_PAD_PKCS1:
            self.chain = None
            _fail(0x6985)
        if apdu.chained:
            self.chain = None
            _fail(0x6884)
        key = self._key(self.key_ref)
        if key is None:
            _fail(0x6F00)
        if len(apdu.data) > 247:
            _fail(0x6700)
        # Cipher.ALG_RSA_PKCS1 encrypting with the private key: block type 1.
        numbers = key.private_numbers()
        n = numbers.public_numbers.n
        block = b"\x00\x01" + b"\xFF" * (256 - 3 - len(apdu.data)) + b"\x00" + apdu.data
        signature = pow(int.from_bytes(block, "big"), numbers.d, n).to_bytes(256, "big")
        if apdu.le and apdu.le < 256:
            _fail(0x6C00)
        return signature + b"\x90\x00"

    def _decipher(self, apdu):
        data = self._chained_data(apdu)
        if data is None:
            return b"\x90\x00"
        if not data or data[0] != 0x00:
            _fail(0x6A80)
        if self.alg_ref != ALG_RSA_PAD_PKCS1:
            _fail(0x6A81)
        key = self._key(self.key_ref)
        if key is None:
            _fail(0x6F00)
        if len(data) - 1 != 256:
            _fail(0x6700)
        try:
            plain = key.decrypt(data[1:], padding.PKCS1v15())
        except ValueError:
            _fail(0x6A80)
        return plain + b"\x90\x00"

    def _put_data(self, apdu):
        data = self._chained_data(apdu)
        if data is None:
            return b"\x90\x00"
        # The applet's default build refuses key import.
        _fail(0x6900)

    def _get_challenge(self, apdu):
        if not self.features & FEATURE_SECURE_RANDOM:
            _fail(0x6A81)
        if apdu.p1 or apdu.p2:
            _fail(0x6A86)
        if apdu.le <= 0 or apdu.le > 256:
            _fail(0x6700)
        return os.urandom(apdu.le) + b"\x90\x00"


def instruction(name):
    """A pull_at condition: the APDU's INS is the named one ("generate",
    "update_binary", "verify", … see INS)."""
    ins = INS[name]
    return lambda apdu: len(apdu) >= 2 and apdu[1] == ins


class IsoAppletCard(VpcdCard):
    """An IsoApplet card in vpcd's reader. insert() connects (a card
    arrives), remove() closes (the card leaves); the applet's state stays in
    `state_path`."""

    def __init__(self, state_path, port, memory=DEFAULT_MEMORY, atr=ATR):
        super().__init__(port, atr)
        self.state_path = state_path
        self.applet = IsoApplet(state_path, memory)
        self.conf_path = os.path.join(os.path.dirname(os.path.abspath(state_path)),
                                      "opensc.conf")
        write_opensc_conf(self.conf_path)
        self._pull = None
        self.pulled = threading.Event()
        self.log = []

    def insert(self, timeout=10):
        self.applet.reload()
        self.applet.power_off()
        self.pulled.clear()
        return super().insert(timeout)

    def pull_at(self, condition, after=False):
        """Pulls the card (closes the vpcd connection) when an APDU matching
        `condition` arrives: a callable taking the APDU bytes, an INS byte or
        a name from INS. With after=False the card never sees the command;
        with after=True it carries it out and the answer is lost. Returns
        the Event set once pulled."""
        if isinstance(condition, str):
            condition = instruction(condition)
        elif isinstance(condition, int):
            ins = condition
            condition = lambda apdu: len(apdu) >= 2 and apdu[1] == ins  # noqa: E731
        self.pulled.clear()
        self._pull = (condition, after)
        return self.pulled

    @property
    def selected_ef(self):
        """The file identifier of the selected EF (for pull_at conditions)."""
        ef = self.applet.current_ef
        return ef["fid"] if ef else None

    def _serve(self, s):
        try:
            while True:
                (length,) = struct.unpack(">H", self._recv_exact(s, 2))
                msg = self._recv_exact(s, length) if length else b""
                if len(msg) == 1:
                    if msg[0] == 0x04:
                        self._send(s, self.atr)
                    else:
                        # 0x00 power off, 0x01 power on, 0x02 reset: no reply.
                        self.applet.power_off()
                    continue
                self.apdus.append(msg)
                pull = self._pull
                if pull and pull[0](msg):
                    self._pull = None
                    if pull[1]:
                        self.applet.process(msg)
                    self.applet.power_off()
                    self._drop(s)
                    self.pulled.set()
                    return
                response = self.applet.process(msg)
                self.log.append((msg[:4].hex(), response[-2:].hex()))
                self._send(s, response)
        except (EOFError, OSError):
            self.applet.power_off()

    @staticmethod
    def _drop(s):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # --- OpenSC's tools against this card ------------------------------------
    def env(self, pcscd):
        """The environment for OpenSC's tools and module: the private
        pcscd's socket and an OpenSC configuration naming this driver."""
        return dict(os.environ, PCSCLITE_CSOCK_NAME=pcscd.link, OPENSC_CONF=self.conf_path)

    def personalise(self, pcscd, pin="123456", puk="0123456789abcdef", label="IsoApplet",
                    serial=None):
        """Makes a PKCS#15 structure with OpenSC's isoApplet profile.
        IsoApplet has one PIN (OpenSC's profile calls it "so-pin"; PKCS#11
        shows it as the user PIN) and an optional 16-character PUK ("so-puk").
        Returns the serial number as PKCS#11 shows it (default: random, so
        two cards differ): OpenSC stores hex digits as bytes and reads them
        back in lower case."""
        serial = serial or secrets.token_hex(8)
        argv = ["pkcs15-init", "--create-pkcs15", "--profile", "pkcs15+isoApplet",
                "--so-pin", pin, "--label", label, "--serial", serial]
        if puk:
            argv += ["--so-puk", puk]
        run_tool(argv, self.env(pcscd))
        if all(c in "0123456789abcdefABCDEF" for c in serial) and len(serial) % 2 == 0:
            serial = serial.lower()
        self.pin, self.puk, self.label, self.serial = pin, puk, label, serial
        return serial

    def pkcs11_tool(self, pcscd, *args, login=True, check=True, timeout=120):
        argv = ["pkcs11-tool", "--module", OPENSC_MODULE]
        if login:
            argv += ["--login", "--pin", self.pin]
        return run_tool(argv + list(args), self.env(pcscd), check=check, timeout=timeout)

    def generate_key(self, pcscd, key_id="01", label="An Phat"):
        """An RSA-2048 key pair made on the card; returns its public key."""
        self.pkcs11_tool(pcscd, "--keypairgen", "--key-type", "rsa:2048",
                         "--id", key_id, "--label", label)
        return self.read_public_key(pcscd, key_id)

    def read_public_key(self, pcscd, key_id):
        r = run_tool(["pkcs15-tool", "--read-public-key", key_id], self.env(pcscd))
        return serialization.load_pem_public_key(r.stdout.encode())

    def write_cert(self, pcscd, der, key_id, label="An Phat"):
        path = self.state_path + f".cert-{key_id}.der"
        with open(path, "wb") as f:
            f.write(der)
        self.pkcs11_tool(pcscd, "--write-object", path, "--type", "cert",
                         "--id", key_id, "--label", label)

    def add_key_and_cert(self, pcscd, pki, key_id="01", label="An Phat", **issue):
        """A key made on the card and a certificate for it from the tests'
        PKI (pki.issue's arguments), written beside it. Returns the Issued
        (its `key` is the public key: the private one never leaves)."""
        public = self.generate_key(pcscd, key_id, label)
        issued = pki.issue(key=public, **issue)
        self.write_cert(pcscd, issued.der, key_id, label)
        return issued


OPENSC_MODULE = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"


def write_opensc_conf(path):
    """OpenSC reads only IsoApplet's driver (no other driver probes the
    card) and caches nothing on disk, so every run reads the card."""
    with open(path, "w") as f:
        f.write(
            "app default {\n"
            "  card_drivers = isoApplet;\n"
            "  framework pkcs15 {\n"
            "    use_file_caching = no;\n"
            "  }\n"
            "}\n"
        )


def run_tool(argv, env, check=True, timeout=120):
    r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise RuntimeError(f"{argv!r} failed ({r.returncode}): {r.stdout}{r.stderr}")
    return r
