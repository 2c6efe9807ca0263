#!/usr/bin/env python3
"""onnxruntime side by side with apr-runtime's `threads/mlp_*` benchmark.

Builds the same 64->256->256->10 softmax MLP shape (Gemm, Relu, Gemm, Relu,
Gemm, Softmax; random weights, transB=1 so W is [out, in] as in .apr) with
onnx.helper and times 256- and 1024-row batches with intra_op_num_threads=1
and 2 (inter_op 1, sequential execution). Prints the median and best of many
runs, in microseconds, and the 2-thread / 1-thread ratio.

    pip install onnxruntime==1.32.0 onnx numpy
    python3 scripts/ort-mlp-bench.py [--seconds 2]

Run it in the same session as `cargo bench --bench parallel` and compare
ratios: the machines these figures come from are shared and noisy.
"""
import argparse
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

DIMS = [64, 256, 256, 10]


def build_model() -> bytes:
    rng = np.random.default_rng(0)
    nodes, inits = [], []
    x = "x"
    for i, (n_in, n_out) in enumerate(zip(DIMS, DIMS[1:])):
        w = (rng.uniform(-1, 1, (n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)
        b = rng.uniform(-1, 1, (n_out,)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        y = f"h{i}"
        nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [y], transB=1))
        if i + 2 < len(DIMS):
            nodes.append(helper.make_node("Relu", [y], [f"r{i}"]))
            x = f"r{i}"
        else:
            x = y
    nodes.append(helper.make_node("Softmax", [x], ["y"], axis=1))
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", DIMS[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", DIMS[-1]])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def identity_model() -> bytes:
    """A graph that does nothing: its time is the Python binding's per-call
    cost, which every figure above includes (ours are timed in Rust)."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", DIMS[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", DIMS[0]])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def session(model: bytes, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def time_batch(sess: ort.InferenceSession, rows: int, seconds: float) -> tuple[float, float]:
    x = np.random.default_rng(rows).uniform(-1, 1, (rows, DIMS[0])).astype(np.float32)
    for _ in range(20):
        sess.run(None, {"x": x})
    samples = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        sess.run(None, {"x": x})
        samples.append(time.perf_counter() - t)
    samples.sort()
    return samples[len(samples) // 2] * 1e6, samples[0] * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    model = build_model()
    print(f"onnxruntime {ort.__version__}, MLP {'->'.join(map(str, DIMS))} softmax")
    for rows in (256, 1024):
        results = {}
        # Interleave the two sessions so load changes hit both alike.
        for threads in (1, 2, 1, 2):
            sess = session(model, threads)
            median, best = time_batch(sess, rows, args.seconds / 2)
            prev = results.get(threads, (float("inf"), float("inf")))
            results[threads] = (min(prev[0], median), min(prev[1], best))
        one, two = results[1], results[2]
        print(
            f"{rows:5} rows: 1 thread median {one[0]:8.1f} µs (best {one[1]:8.1f}); "
            f"2 threads median {two[0]:8.1f} µs (best {two[1]:8.1f}); "
            f"2/1 = {two[0] / one[0]:.2f}"
        )
    median, best = time_batch(session(identity_model(), 1), 256, args.seconds / 2)
    print(f"per-call cost (Identity, 256 rows): median {median:.1f} µs (best {best:.1f})")


if __name__ == "__main__":
    main()
