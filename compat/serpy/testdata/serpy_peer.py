#!/usr/bin/env python3
"""A serpy / serpy2 peer for slc's interoperability tests.

Standard library only. It speaks the two wire protocols of the serpy
module, with Python's own base64.b85encode/b85decode, float.hex,
float.fromhex and int.to_bytes, so that the Go side is checked against
the real Python conversions. It is written from the protocol, not copied
from serpy.

usage:
  serpy_peer.py v2-echo          listen on 127.0.0.1:0, print the port,
                                 accept one connection, echo every value
  serpy_peer.py v2-send VALUES   listen, print the port, accept one
                                 connection, send the JSON list VALUES
                                 (objects {"int": n}, {"float": "hex"},
                                 {"str": s}, {"bytes": "hex"}), then echo
  serpy_peer.py v1-echo          listen, print the port, accept one
                                 connection, echo every message in the mode
                                 it came in, announcing modes with SETMODE
                                 and waiting for ACKMODCG and ACKEOT

Every value received is printed on stdout as one JSON line.
"""
import base64
import json
import socket
import sys

MAGIC = b"\xDE\xCA\xFE\xCA\xFE"


def listen():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    print(srv.getsockname()[1], flush=True)
    srv.settimeout(30)
    conn, _ = srv.accept()
    conn.settimeout(30)
    srv.close()
    return conn


def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def v2_encode(value):
    kind, x = value
    if kind == "int":
        data, t = x.to_bytes(8, "little", signed=True), b"\x01"
    elif kind == "float":
        data, t = x.hex().encode("ascii"), b"\x11"
    elif kind == "str":
        data, t = x.encode("utf-8"), b"\x21"
    else:
        data, t = x, b"\x81"
    checksum = (sum(data) & 0xFFFFFFFF).to_bytes(4, "little")
    return MAGIC + t + checksum + len(data).to_bytes(4, "little") + data


def v2_decode(t, data):
    if t == b"\x11":
        return ("float", float.fromhex(data.decode("ascii")))
    if t == b"\x01":
        return ("int", int.from_bytes(data, "little", signed=True))
    if t == b"\x21":
        return ("str", data.decode("utf-8"))
    if t == b"\x81":
        return ("bytes", data)
    raise TypeError("unsupported type")


def to_json(value):
    kind, x = value
    if kind == "float":
        return {"float": x.hex(), "repr": repr(x)}
    if kind == "bytes":
        return {"bytes": x.hex()}
    return {kind: x}


def from_json(obj):
    if "int" in obj:
        return ("int", obj["int"])
    if "float" in obj:
        return ("float", float.fromhex(obj["float"]))
    if "str" in obj:
        return ("str", obj["str"])
    return ("bytes", bytes.fromhex(obj["bytes"]))


def v2_loop(conn):
    while True:
        head = recv_exact(conn, 14)
        if head is None:
            return
        if head[:5] != MAGIC:
            print(json.dumps({"error": "bad magic"}), flush=True)
            return
        t = head[5:6]
        checksum = int.from_bytes(head[6:10], "little")
        n = int.from_bytes(head[10:14], "little")
        data = recv_exact(conn, n)
        if data is None:
            return
        if sum(data) & 0xFFFFFFFF != checksum:
            print(json.dumps({"error": "checksum"}), flush=True)
            return
        value = v2_decode(t, data)
        print(json.dumps(to_json(value)), flush=True)
        conn.sendall(v2_encode(value))


class V1:
    """The v1 block protocol: blocks end with 0x1F, control blocks start with 0x01."""

    def __init__(self, conn):
        self.conn = conn
        self.buf = b""
        self.in_mode = 0
        self.out_mode = 0
        self.pending = b""

    def block(self):
        while b"\x1f" not in self.buf:
            chunk = self.conn.recv(4096)
            if not chunk:
                return None
            self.buf += chunk
        block, self.buf = self.buf.split(b"\x1f", 1)
        return block

    def send_block(self, block):
        self.conn.sendall(block + b"\x1f")

    def wait_control(self, want, messages):
        """Read blocks until control block want, handling the peer's messages."""
        while True:
            block = self.block()
            if block is None:
                raise EOFError
            if block == want:
                return
            self.handle(block, messages)

    def handle(self, block, messages):
        if not block:
            return
        if block.startswith(b"\x01"):
            text = block.decode("ascii")[1:]
            if text.startswith("SETMODE"):
                self.in_mode = int(text[-1])
                self.send_block(b"\x01ACKMODCG")
                return
            raise ValueError("unexpected control block %r" % block)
        if self.in_mode == 0:
            messages.append((0, block))
        elif self.in_mode == 2:
            messages.append((2, base64.b85decode(block)))
        elif self.in_mode in (1, 3):
            self.pending += block
            if b"\x04" in self.pending:
                message, self.pending = self.pending.split(b"\x04")
                if self.in_mode == 3:
                    message = base64.b85decode(message)
                messages.append((self.in_mode, message))
                self.send_block(b"\x01ACKEOT!!")
        else:
            raise ValueError("mode %d" % self.in_mode)

    def send(self, mode, data, messages):
        if mode != self.out_mode:
            self.send_block(b"\x01SETMODE" + str(mode).encode("ascii"))
            self.wait_control(b"\x01ACKMODCG", messages)
            self.out_mode = mode
        if mode in (2, 3):
            data = base64.b85encode(data)
        if mode in (1, 3):
            self.send_block(data + b"\x04")
            self.wait_control(b"\x01ACKEOT!!", messages)
        else:
            self.send_block(data)


def v1_loop(conn):
    peer = V1(conn)
    messages = []
    while True:
        while messages:
            mode, data = messages.pop(0)
            print(json.dumps({"mode": mode, "bytes": data.hex()}), flush=True)
            peer.send(mode, data, messages)
        block = peer.block()
        if block is None:
            return
        peer.handle(block, messages)


def main(argv):
    cmd = argv[1]
    if cmd == "v2-echo":
        conn = listen()
        v2_loop(conn)
    elif cmd == "v2-send":
        values = [from_json(o) for o in json.loads(argv[2])]
        conn = listen()
        for value in values:
            conn.sendall(v2_encode(value))
        v2_loop(conn)
    elif cmd == "v1-echo":
        conn = listen()
        try:
            v1_loop(conn)
        except EOFError:
            pass
    else:
        raise SystemExit("unknown command " + cmd)
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
