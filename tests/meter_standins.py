"""Meter stand-ins shared by the meter, sampler, energy, CLI and end-to-end tests: a pseudo-terminal
that plays a serial meter (`PtyPeer`, `LineStreamer`), INA3221 and RAPL sysfs trees in a temp folder,
and a thread that advances a RAPL counter at a known power (`RaplLoad`)."""
import fcntl
import os
import struct
import termios
import threading
import time
import tty

import boards
import pytest

WATTS = 12.0
# A tty drops input once its queue is full (a starved reader on a busy machine): the streamer waits
# below this many unread bytes instead, so a test never sees torn lines a real link would not send.
MAX_BACKLOG = 1024


class PtyPeer:
    """The meter's end of a pty. `port` is a stable symlink to the slave, like a udev name."""

    def __init__(self, link=None):
        self.master, slave = os.openpty()
        tty.setraw(slave)  # no echo or newline translation before pyserial configures the port
        self.slave_path = os.ttyname(slave)
        self._slave = slave
        self.port = self.slave_path
        if link is not None:
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(self.slave_path, link)
            self.port = str(link)

    def write(self, data):
        os.write(self.master, data)

    def backlog(self):
        """Bytes written to the meter's side and not read yet."""
        try:
            return struct.unpack("i", fcntl.ioctl(self._slave, termios.FIONREAD, b"\0\0\0\0"))[0]
        except OSError:
            return 0

    def read_exact(self, n, timeout=3.0):
        deadline = time.time() + timeout
        out = b""
        import select
        while len(out) < n and time.time() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if ready:
                out += os.read(self.master, n - len(out))
        return out

    def read_until(self, term, timeout=3.0):
        out = b""
        while not out.endswith(term):
            chunk = self.read_exact(1, timeout)
            if not chunk:
                break
            out += chunk
        return out

    def close(self):
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass


class LineStreamer(threading.Thread):
    """Writes `fmt % watts(t)` lines at `hz` to a PtyPeer; records (send time, watts) pairs."""

    def __init__(self, peer, watts, hz=100.0, fmt="%.4f\n", duration=None):
        super().__init__(daemon=True)
        self.peer, self.watts, self.hz, self.fmt, self.duration = peer, watts, hz, fmt, duration
        self.stop_event = threading.Event()
        self.t0 = None
        self.sent = []

    def run(self):
        self.t0 = time.time()
        k = 0
        while not self.stop_event.is_set():
            target = self.t0 + k / self.hz
            delay = target - time.time()
            if delay > 0:
                time.sleep(delay)
            now = time.time()
            rel = now - self.t0
            if self.duration is not None and rel > self.duration:
                break
            w = self.watts(rel)
            while self.peer.backlog() > MAX_BACKLOG and not self.stop_event.wait(0.005):
                pass
            try:
                self.peer.write((self.fmt % w).encode())
            except OSError:
                break
            self.sent.append((now, w))
            k += 1

    def stop(self):
        self.stop_event.set()
        self.join(5)


TX2_RAILS = {  # bus-address: [(rail, mW)] as on a TX2 under L4T R32
    "0-0040": [("VDD_SYS_GPU", 1520), ("VDD_SYS_SOC", 762), ("VDD_4V0_WIFI", 0)],
    "0-0041": [("VDD_IN", 5112), ("VDD_SYS_CPU", 1214), ("VDD_SYS_DDR", 840)],
}


write = boards.write


def make_tx2_tree(root, rails=TX2_RAILS):
    """The R32 `ina3221x` iio layout: rail_name_N, in_powerN_input (mW), in_voltageN/in_currentN."""
    return boards.iio_tree(root, rails)


def make_rapl_tree(root, zones=(("0", "package-0", 1000), ("0:0", "core", 500), ("1", "psys", 3000)),
                   max_range=262143328850):
    for zid, name, uj in zones:
        zdir = os.path.join(root, "sys/class/powercap/intel-rapl:%s" % zid)
        write(os.path.join(zdir, "name"), name + "\n")
        write(os.path.join(zdir, "energy_uj"), "%020d\n" % uj)
        write(os.path.join(zdir, "max_energy_range_uj"), "%d\n" % max_range)
    return root


def set_uj(root, zid, uj):
    with open(os.path.join(root, "sys/class/powercap/intel-rapl:%s/energy_uj" % zid), "r+") as fh:
        fh.write("%020d\n" % uj)


class RaplLoad(threading.Thread):
    """Advances package-0's energy_uj as a `watts` load would, in place, every 5 ms."""

    def __init__(self, root, watts=WATTS):
        super().__init__(daemon=True)
        self.watts = watts
        self.path = os.path.join(root, "sys/class/powercap/intel-rapl:0/energy_uj")
        self.halt = threading.Event()

    def run(self):
        t0 = time.time()
        fd = os.open(self.path, os.O_WRONLY)
        try:
            while not self.halt.wait(0.005):
                os.pwrite(fd, b"%020d\n" % int(self.watts * (time.time() - t0) * 1e6), 0)
        finally:
            os.close(fd)


@pytest.fixture
def rapl(tmp_path):
    """The spec of a RAPL meter on a sysfs tree whose package draws WATTS all the time."""
    root = make_rapl_tree(str(tmp_path / "sys"), zones=(("0", "package-0", 0),))
    load = RaplLoad(root)
    load.start()
    yield "rapl?root=" + root
    load.halt.set()
    load.join()


@pytest.fixture
def pty_meter():
    """The spec of a DIY `lines` meter on a pty: 5.0 W a line, 50 lines a second, until the test ends."""
    master, slave = os.openpty()
    tty.setraw(slave)
    stop = threading.Event()

    def feed():
        while not stop.wait(0.02):
            os.write(master, b"5.0\n")

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    yield "lines:%s" % os.ttyname(slave)
    stop.set()
    thread.join()
    os.close(master)
    os.close(slave)
