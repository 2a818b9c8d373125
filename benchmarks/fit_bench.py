"""Steps per second of ``sd.fit`` next to hand-written JAX training loops, on 1 and N devices.

The problem: fit the damped oscillator ``A*exp(-k*t)*cos(w*t + p)`` to noisy
data by mean squared error with Adam, full batch, float32. Three contenders,
all on the same data, initial values and step count:

* ``sd.fit``: closed-form gradient, ``lax.scan`` chunks, progress bar off;
* hand loop: ``jax.jit`` of one step (``jax.value_and_grad`` + ``optax.adam``)
  called from a Python ``for`` loop, the usual hand-written training loop
  (it waits for the loss every 10 steps, as a loop that logs does: with
  unbounded asynchronous dispatch XLA:CPU's simulated devices deadlock in the
  all-reduce);
* hand scan: the same step inside one jitted ``jax.lax.scan`` (the fastest
  hand-written form; for reference).

Each is warmed up once (compilation excluded) and then timed over ``--steps``
steps; the best of ``--repeat`` rounds is reported, the three contenders
interleaved within each round (on a shared machine, load then hits them alike).
An ``sd.fit`` timing is the whole call: validation, placement, the compiled
chunks and the final full-data loss. Every device count runs in
its own subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (simulated CPU devices
when there is no accelerator), with the rows sharded and parameters replicated
for all three contenders.

Run::

    python benchmarks/fit_bench.py                 # 1 and 4 devices
    python benchmarks/fit_bench.py --rows 20000 --steps 2000 --devices 1 4
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LOSS = "(A*exp(-k*t)*cos(w*t + p) - y)**2"
INIT = {"A": 1.0, "k": 0.1, "w": 1.4, "p": 0.0}
SYNC_EVERY = 10


def worker(rows: int, steps: int, n_devices: int, repeat: int) -> dict:
    sys.path.insert(0, ROOT)
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from symdiff._fit import fit

    rng = np.random.default_rng(0)
    t = np.linspace(0, 10, rows).astype(np.float32)
    y = (2.0 * np.exp(-0.3 * t) * np.cos(1.5 * t + 0.5) + 0.05 * rng.normal(size=rows)).astype(np.float32)
    lr = 1e-2
    devices = jax.devices()[:n_devices]
    if len(devices) < n_devices:
        raise SystemExit(f"only {len(devices)} devices; set XLA_FLAGS=--xla_force_host_platform_device_count")

    def best_of(*fns):
        """Steps/s of each contender: best of `repeat` rounds, contenders interleaved within each round so
        that load from other processes hits them alike."""
        times = [[] for _ in fns]
        for _ in range(repeat):
            for fn, record in zip(fns, times):
                t0 = time.perf_counter()
                fn()
                record.append(time.perf_counter() - t0)
        return [steps / min(record) for record in times]

    # ---- sd.fit
    kw = dict(steps=steps, optimizer="adam", lr=lr, progress=False, devices=n_devices if n_devices > 1 else None)
    t0 = time.perf_counter()
    r = fit(LOSS, INIT, {"t": t, "y": y}, **kw)
    first_call = time.perf_counter() - t0

    def sd_fit():
        return fit(LOSS, INIT, {"t": t, "y": y}, **kw)

    # ---- hand-written: jax.jit + jax.grad + optax
    def objective(params, t, y):
        A, k, w, p = params["A"], params["k"], params["w"], params["p"]
        return jnp.mean((A * jnp.exp(-k * t) * jnp.cos(w * t + p) - y) ** 2)

    tx = optax.adam(lr)

    @jax.jit
    def step(params, state, t, y):
        value, grads = jax.value_and_grad(objective)(params, t, y)
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    @jax.jit
    def scan_steps(params, state, t, y):
        def body(carry, _):
            params, state = carry
            params, state, value = step(params, state, t, y)
            return (params, state), value

        (params, state), values = jax.lax.scan(body, (params, state), None, length=steps)
        return params, state, values

    if n_devices > 1:
        mesh = jax.sharding.Mesh(np.array(devices), ("data",))
        rows_sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
        replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
        td, yd = jax.device_put(t, rows_sharding), jax.device_put(y, rows_sharding)
        p0 = jax.device_put({k: jnp.float32(v) for k, v in INIT.items()}, replicated)
    else:
        td, yd = jnp.asarray(t), jnp.asarray(y)
        p0 = {k: jnp.float32(v) for k, v in INIT.items()}

    def hand_loop():
        params, state = p0, tx.init(p0)
        history = []
        for i in range(steps):
            params, state, value = step(params, state, td, yd)
            history.append(value)
            if i % SYNC_EVERY == 0:
                # wait for the loss now and then, as a logging loop does; without this, thousands of
                # queued executions with all-reduces deadlock XLA:CPU's simulated devices
                value.block_until_ready()
        jax.block_until_ready(params)
        return params, history

    def hand_scan():
        params, state, values = scan_steps(p0, tx.init(p0), td, yd)
        jax.block_until_ready(values)
        return params

    hand_loop()  # compile
    hand_scan()
    sd_rate, loop_rate, scan_rate = best_of(sd_fit, hand_loop, hand_scan)
    params_hand = hand_scan()
    agree = max(abs(float(r.params[k]) - float(params_hand[k])) for k in INIT)
    return {
        "devices": n_devices,
        "device_kind": devices[0].platform,
        "rows": rows,
        "steps": steps,
        "sd_fit_steps_per_s": sd_rate,
        "sd_fit_first_call_s": first_call,
        "hand_loop_steps_per_s": loop_rate,
        "hand_scan_steps_per_s": scan_rate,
        "max_param_difference_vs_hand": agree,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        print(json.dumps(worker(args.rows, args.steps, args.worker, args.repeat)))
        return 0
    results = []
    for n in args.devices:
        env = dict(os.environ)
        flags = env.get("XLA_FLAGS", "")
        env["XLA_FLAGS"] = (flags + f" --xla_force_host_platform_device_count={max(n, 1)}").strip()
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(n), "--rows", str(args.rows),
               "--steps", str(args.steps), "--repeat", str(args.repeat)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            return out.returncode
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"damped-oscillator fit, adam, full batch, float32, {args.rows} rows, {args.steps} steps "
          f"(best of {args.repeat}, compilation excluded)")
    header = f"{'devices':>8} {'sd.fit':>12} {'hand loop':>12} {'hand scan':>12} {'sd/loop':>8} {'1st call':>9}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r['devices']:>8} {r['sd_fit_steps_per_s']:>10.0f}/s {r['hand_loop_steps_per_s']:>10.0f}/s "
              f"{r['hand_scan_steps_per_s']:>10.0f}/s {r['sd_fit_steps_per_s'] / r['hand_loop_steps_per_s']:>7.1f}x "
              f"{r['sd_fit_first_call_s']:>8.2f}s")
    print("max |param difference| sd.fit vs hand-written:",
          ", ".join(f"{r['devices']} dev: {r['max_param_difference_vs_hand']:.2e}" for r in results))
    print("device:", results[0]["device_kind"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
