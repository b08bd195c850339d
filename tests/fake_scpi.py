"""A fake SCPI power analyser on 127.0.0.1: a TCP socket server speaking a Yokogawa WT310's (WT300
command set) or WT210's commands, as pyvisa-py's `TCPIP::HOST::PORT::SOCKET` resource talks to it.

`FakeAnalyser(watts, model="wt310", update_s=0.1)`: `watts(t)` gives the active power at wall time t
(None: the analyser has no valid value, it answers 9.91E+37). `start()` returns the port; `commands`
lists every line received, in order.
"""
import socket
import threading

IDN = {"wt310": "YOKOGAWA,WT310,C2QB00000,F1.03", "wt210": "YOKOGAWA,760401,0,F3.01"}
# The WT310's voltage and current ranges (150 V x 0.5 A: a Jetson's supply on a 120 V line).
RANGES = {":INP:VOLT:RANG?": "150.0E+00", ":INP:CURR:RANG?": "500.0E-03"}
VALUE_QUERY = {"wt310": ":NUM:NORM:VAL?", "wt210": ":MEAS:VAL?"}


class FakeAnalyser:
    def __init__(self, watts, model="wt310", update_s=0.1):
        import time
        self.clock = time.time
        self.watts, self.model, self.update_s = watts, model, update_s
        self.commands = []
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._stop = threading.Event()

    def start(self):
        self._server.listen(4)
        threading.Thread(target=self._accept, daemon=True).start()
        return self._server.getsockname()[1]

    def stop(self):
        self._stop.set()
        self._server.close()

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn, conn.makefile("rb") as lines:
            for raw in lines:
                command = raw.decode("ascii").strip()
                self.commands.append(command)
                reply = self.answer(command)
                if reply is not None:
                    conn.sendall(reply.encode("ascii") + b"\n")

    def answer(self, command):
        if command == "*IDN?":
            return IDN[self.model]
        if command == ":SAMP:RATE?" and self.model == "wt310":
            return "%.3E" % self.update_s
        if command in RANGES and self.model == "wt310":
            return RANGES[command]
        if command == VALUE_QUERY[self.model]:
            watts = self.watts(self.clock())
            return "9.91E+37" if watts is None else "%.4E" % watts
        return None
