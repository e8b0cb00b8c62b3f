"""pgwire.py: a minimal PostgreSQL client (simple query protocol, trust auth).

Why not psql: the benchmarks need to time a statement from the client's side of
COMMIT, know the backend's pid (to sample its memory) and pace a loader without
a process per statement. Python's standard library has no Postgres driver and
there is no PyPI here, so this speaks just enough of the v3 protocol: startup
over the Unix socket, simple queries, text results, errors and notices.
"""

import os
import socket
import struct


class PgError(Exception):
    """An ErrorResponse from the server: .fields maps field codes to text."""

    def __init__(self, fields):
        self.fields = fields
        super().__init__("%s: %s (SQLSTATE %s)" % (fields.get("S", "ERROR"), fields.get("M", ""),
                                                  fields.get("C", "?")))


class Connection:
    """One session. query() returns the rows (lists of str or None) of the last
    statement that returned rows; command() returns the last command tag."""

    def __init__(self, dbname, user="postgres", host=None, port=None):
        host = host or os.environ.get("PGHOST", "/var/run/postgresql")
        port = int(port or os.environ.get("PGPORT", "5432"))
        if host.startswith("/"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(os.path.join(host, ".s.PGSQL.%d" % port))
        else:
            self.sock = socket.create_connection((host, port))
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.pid = None
        self.notices = []
        params = b"user\0" + user.encode() + b"\0database\0" + dbname.encode() + b"\0\0"
        body = struct.pack("!i", 196608) + params
        self.sock.sendall(struct.pack("!i", len(body) + 4) + body)
        while True:
            kind, payload = self._read()
            if kind == b"R":
                (code,) = struct.unpack("!i", payload[:4])
                if code != 0:
                    raise RuntimeError("pgwire: only trust authentication is supported (got %d)" % code)
            elif kind == b"K":
                self.pid, _ = struct.unpack("!ii", payload[:8])
            elif kind == b"E":
                raise PgError(_fields(payload))
            elif kind == b"Z":
                break

    def _read(self):
        while len(self.buf) < 5:
            self._fill()
        kind = self.buf[:1]
        (length,) = struct.unpack("!i", self.buf[1:5])
        while len(self.buf) < 1 + length:
            self._fill()
        payload = self.buf[5:1 + length]
        self.buf = self.buf[1 + length:]
        return kind, payload

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("pgwire: server closed the connection")
        self.buf += chunk

    def send(self, sql):
        """Sends a simple query without waiting for its answer (see finish())."""
        body = sql.encode() + b"\0"
        self.sock.sendall(b"Q" + struct.pack("!i", len(body) + 4) + body)

    def finish(self):
        """Reads the answer of the query sent last; returns (rows, tag)."""
        rows, last_rows, tag, error = None, None, None, None
        while True:
            kind, payload = self._read()
            if kind == b"T":
                rows = []
            elif kind == b"D":
                rows.append(_datarow(payload))
            elif kind == b"C":
                tag = payload[:-1].decode()
                if rows is not None:
                    last_rows = rows
                rows = None
            elif kind == b"E":
                error = PgError(_fields(payload))
            elif kind == b"N":
                self.notices.append(_fields(payload).get("M", ""))
            elif kind == b"Z":
                break
        if error is not None:
            raise error
        return last_rows, tag

    def query(self, sql):
        """Runs sql (one or more statements); returns the rows of the last row-returning one."""
        self.send(sql)
        return self.finish()[0]

    def command(self, sql):
        """Runs sql; returns the last command tag (e.g. 'INSERT 0 1')."""
        self.send(sql)
        return self.finish()[1]

    def value(self, sql):
        """Runs sql; returns the first column of its first row (or None)."""
        rows = self.query(sql)
        return rows[0][0] if rows else None

    def close(self):
        try:
            self.sock.sendall(b"X" + struct.pack("!i", 4))
        finally:
            self.sock.close()


def _fields(payload):
    out = {}
    for part in payload.split(b"\0"):
        if part:
            out[part[:1].decode()] = part[1:].decode(errors="replace")
    return out


def _datarow(payload):
    (n,) = struct.unpack("!h", payload[:2])
    pos = 2
    row = []
    for _ in range(n):
        (length,) = struct.unpack("!i", payload[pos:pos + 4])
        pos += 4
        if length < 0:
            row.append(None)
        else:
            row.append(payload[pos:pos + length].decode())
            pos += length
    return row
