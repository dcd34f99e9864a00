#!/usr/bin/env python3
"""Sends N messages of SIZE bytes at RATE messages per second, evenly paced,
over SESSIONS persistent SMTP sessions (message k leaves at start + k/RATE on
session k mod SESSIONS), for the relay benchmark's light-load leg.
smtp-source cannot pace: its -w makes every session wait together, which
sends bursts of SESSIONS messages at once.

Usage: paced_source.py HOST:PORT N RATE SESSIONS SIZE FROM TO
Prints the achieved rate and how late the sends were (p99), so a run that
could not keep the pace says so.
"""
import smtplib
import sys
import threading
import time

host, port = sys.argv[1].rsplit(":", 1)
n, rate, sessions, size = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
sender, rcpt = sys.argv[6], sys.argv[7]
line = b"x" * 78 + b"\r\n"
body = b"Subject: paced\r\nFrom: " + sender.encode() + b"\r\nTo: " + rcpt.encode() + b"\r\n\r\n"
body += line * max(1, (size - len(body)) // len(line))
late = []
errors = []
lock = threading.Lock()
start = time.monotonic() + 0.5


def session(k):
    try:
        s = smtplib.SMTP(host, int(port), timeout=30)
        s.ehlo("paced.test")
        for i in range(k, n, sessions):
            due = start + i / rate
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            lag = time.monotonic() - due
            s.sendmail(sender, [rcpt], body)
            with lock:
                late.append(lag)
        s.quit()
    except Exception as e:  # a failed session is reported, not hidden
        with lock:
            errors.append(repr(e))


threads = [threading.Thread(target=session, args=(k,)) for k in range(sessions)]
for t in threads:
    t.start()
for t in threads:
    t.join()
took = time.monotonic() - start
late.sort()
p99 = late[max(int(len(late) * 0.99) - 1, 0)] * 1000 if late else 0.0
print(f"paced: {len(late)} of {n} sent in {took:.1f} s ({len(late) / took:.1f} msg/s, asked {rate:g}); "
      f"sends late by p99 {p99:.1f} ms")
if errors:
    print("paced: session errors: " + "; ".join(errors[:3]), file=sys.stderr)
    sys.exit(1)
