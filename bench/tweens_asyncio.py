#!/usr/bin/env python3
# SPDX-License-Identifier: BSL-1.0
# The robot lecture's way, for bench/tweens to compare with: one asyncio task per servo, each
# move() making incremental updates with asyncio.sleep(1 / rate); servos move at once with
# gather. servo.set() is non-blocking and does nothing here (the C++ side's driver records a
# time stamp; this one counts). Prints one JSON object: updates, cpu_s (process CPU time over
# the run), and the lateness of a sample of updates (1 task in 100) against each move's own grid.
import argparse
import asyncio
import json
import random
import time


class Servo:
    def __init__(self):
        self.angle = 90.0
        self.updates = 0

    def set(self, angle):  # non-blocking, as fast as it can
        self.angle = angle
        self.updates += 1


async def move(servo, dst, speed, rate, lateness=None):
    """The lecture's move(): from where it is to dst at speed (units/s), rate updates a second."""
    loop = asyncio.get_running_loop()
    start, src = loop.time(), servo.angle
    steps = max(1, int(abs(dst - src) / speed * rate))
    for k in range(1, steps + 1):
        servo.set(src + (dst - src) * k / steps)
        if lateness is not None:
            lateness.append(loop.time() - (start + (k - 1) / rate))
        await asyncio.sleep(1 / rate)


async def sway(servo, rate, until, rng, lateness):
    loop = asyncio.get_running_loop()
    while loop.time() < until:  # until cancelled
        dst = rng.uniform(0, 180)
        speed = abs(dst - servo.angle) / rng.uniform(0.5, 2.0) + 1e-9
        await move(servo, dst, speed, rate, lateness)


async def main(args):
    rng = random.Random(1)
    servos = [Servo() for _ in range(args.servos)]
    lateness = []
    loop = asyncio.get_running_loop()
    cpu0, wall0 = time.process_time(), time.monotonic()
    tasks = [asyncio.create_task(sway(s, args.rate, float("inf"), rng, lateness if i % 100 == 0 else None))
             for i, s in enumerate(servos)]
    await asyncio.sleep(args.seconds)  # the run: every servo swaying, then all stopped at once
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    updates = sum(s.updates for s in servos)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    lateness.sort()
    pct = lambda q: round(lateness[min(len(lateness) - 1, int(q * len(lateness)))] * 1e6, 1) if lateness else None
    print(json.dumps({"servos": args.servos, "rate_hz": args.rate, "seconds": round(wall, 3), "updates": updates,
                      "expected_updates": int(args.servos * args.rate * args.seconds),
                      "cpu_s": round(cpu, 3), "updates_per_cpu_s": round(updates / cpu) if cpu else None,
                      "p50_lateness_us": pct(0.5), "p99_lateness_us": pct(0.99),
                      "lateness_samples": len(lateness)}))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--servos", type=int, default=10000)
    p.add_argument("--rate", type=float, default=50)
    p.add_argument("--seconds", type=float, default=5)
    asyncio.run(main(p.parse_args()))
