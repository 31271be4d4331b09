"""The ledger's clock reads the simulation time a SimPy process sees, as the run advances."""

from __future__ import annotations

import simpy

from mktsim.ledger import sim_clock


def test_sim_clock_follows_the_environment():
    env = simpy.Environment(initial_time=2.5)
    clock = sim_clock(env)
    seen = []

    def proc():
        for gap in (1.0, 0.25, 3.0):
            yield env.timeout(gap)
            seen.append((env.now, clock()))

    env.process(proc())
    env.run()
    assert seen == [(3.5, 3.5), (3.75, 3.75), (6.75, 6.75)]
    assert clock() == 6.75
    other = simpy.Environment(initial_time=9.0)  # bound to its own environment
    assert sim_clock(other)() == 9.0 and clock() == 6.75
