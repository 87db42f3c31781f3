#!/usr/bin/env python3
"""Events each instance hears from the others, at N instances, under LISTEN/NOTIFY and NATS.

A model, not a measurement (BENCHMARKS.md has the measured two-instance figures that check
it): R rooms whose sizes follow a chat product's usual shape (most rooms are direct messages
and small groups, a few are large), E messages a second spread over them either in
proportion to their members (big rooms are busy) or evenly (every conversation as lively as
any other), and every member online with one socket placed on a random instance by the
load balancer, following all their rooms (`myEvents`, what a chat client's room list runs).

LISTEN/NOTIFY brings every event to every instance: E each. NATS brings an event to the
instances that follow its room; a room with m members online is followed by
N * (1 - (1 - 1/N)^m) instances on average, so an instance hears
sum over rooms of e_r * (1 - (1 - 1/N)^m_r).

    python3 bench/cluster_estimate.py [--rooms 10000] [--rate 1000] [--seed 1]
"""
import argparse
import random


def room_sizes(rooms, rng):
    sizes = []
    for _ in range(rooms):
        p = rng.random()
        if p < 0.60:
            sizes.append(2)  # direct messages
        elif p < 0.90:
            sizes.append(rng.randint(3, 12))  # small groups
        elif p < 0.99:
            sizes.append(rng.randint(13, 150))  # teams
        else:
            sizes.append(rng.randint(151, 2000))  # announcements, communities
    return sizes


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=1000.0, help="messages per second, cluster-wide")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    sizes = room_sizes(args.rooms, rng)
    members = sum(sizes)
    print(f"{args.rooms} rooms, {members} memberships, {args.rate:.0f} messages/s cluster-wide")
    print("events each instance hears:")
    print(f"{'messages':>18}  {'instances':>9}  {'LISTEN/NOTIFY':>14}  {'NATS':>10}  {'NATS share':>10}")
    spreads = {
        "by members": [args.rate * m / members for m in sizes],
        "evenly by room": [args.rate / len(sizes) for _ in sizes],
    }
    for name, rates in spreads.items():
        for n in (2, 10, 100):
            nats = sum(e * (1 - (1 - 1 / n) ** m) for e, m in zip(rates, sizes))
            share = 100 * nats / args.rate
            print(f"{name:>18}  {n:>9}  {args.rate:>12.0f}/s  {nats:>8.0f}/s  {share:>9.1f}%")


if __name__ == "__main__":
    main()
