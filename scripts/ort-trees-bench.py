#!/usr/bin/env python3
"""onnxruntime on the tree-ensemble benchmark model gb_bench_100x6_20f.

Loads tests/fixtures/onnx/bench/gb_bench_100x6_20f.onnx (scikit-learn
GradientBoostingClassifier, binary, 100 trees of depth 6 on 20 features,
exported by skl2onnx: TreeEnsembleClassifier + Cast + ZipMap) with
intra_op_num_threads=1, inter_op_num_threads=1 and sequential execution, and
times one-row calls and 1000-row batches. The batch is rebuilt from the seed
that scripts/onnx-fixtures.py used (rows 5000..6000 of the same
make_classification), and its first 16 rows are checked against the
fixture's json. Prints the median and best of many runs, in microseconds,
for the model as exported (ZipMap: a Python list of dicts comes back) and
with ZipMap dropped (the probability tensor comes back, as apr-runtime
gives it). With --sklearn it also retrains the model from the same seed
(a few seconds) and times scikit-learn's predict_proba on the same rows.

    pip install -r scripts/onnx-requirements.txt
    python3 scripts/ort-trees-bench.py [--seconds 2] [--sklearn]

The batch is also kept as tests/fixtures/onnx/bench/gb_bench_batch_1000x20.f32
(1000 x 20 little-endian f32, written when absent, checked when present), so
that `cargo bench -p apr-runtime --features onnx --bench trees` times the same
rows.

Run it in the same session as the Rust benchmark and compare there: the
machines these figures come from are shared and noisy.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests/fixtures/onnx/bench/gb_bench_100x6_20f"


def session(model: bytes) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def without_zipmap(model: onnx.ModelProto) -> bytes:
    """The same graph with ZipMap dropped: the TreeEnsembleClassifier's
    probability tensor becomes the second output."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    zipmap = next(n for n in m.graph.node if n.op_type == "ZipMap")
    m.graph.node.remove(zipmap)
    out = next(o for o in m.graph.output if o.name == zipmap.output[0])
    m.graph.output.remove(out)
    m.graph.output.append(
        onnx.helper.make_tensor_value_info(zipmap.input[0], onnx.TensorProto.FLOAT, [None, 2])
    )
    return m.SerializeToString()


def batch(meta: dict) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    b = meta["bench"]
    X, y = make_classification(**b["make_classification"])
    return X.astype(np.float32), y


def time_calls(fn, seconds: float) -> tuple[float, float]:
    for _ in range(20):
        fn()
    samples = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    samples.sort()
    return samples[len(samples) // 2] * 1e6, samples[0] * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--sklearn", action="store_true", help="retrain and time predict_proba too")
    args = parser.parse_args()

    meta = json.loads(FIXTURE.with_suffix(".json").read_text())
    model = onnx.load(str(FIXTURE.with_suffix(".onnx")))
    X, y = batch(meta)
    n = meta["bench"]["train_rows"]
    rows = X[n : n + 1000]
    one = rows[:1]

    # The regenerated batch must be the one the fixture was made from.
    want = np.array(meta["inputs"], dtype=np.float32)
    assert np.array_equal(rows[: len(want)], want), "batch differs from the fixture's inputs"
    # The Rust benchmark (apr-runtime/benches/trees.rs) reads the same rows.
    batch_file = FIXTURE.parent / "gb_bench_batch_1000x20.f32"
    if not batch_file.exists():
        rows.astype("<f4").tofile(batch_file)
    assert np.array_equal(np.fromfile(batch_file, dtype="<f4").reshape(rows.shape), rows)

    print(f"onnxruntime {ort.__version__}, {FIXTURE.name}: 100 trees, depth 6, 20 features, 1 thread")
    for label, data in (("as exported (ZipMap)", model.SerializeToString()), ("ZipMap dropped", without_zipmap(model))):
        sess = session(data)
        name = sess.get_inputs()[0].name
        _, proba = sess.run(None, {name: rows[: len(want)]})
        got = [[d[0], d[1]] for d in proba] if isinstance(proba, list) else proba
        assert np.allclose(got, meta["probabilities"], atol=1e-6), "outputs differ from the fixture"
        m1, b1 = time_calls(lambda: sess.run(None, {name: one}), args.seconds)
        mb, bb = time_calls(lambda: sess.run(None, {name: rows}), args.seconds)
        print(
            f"  {label:22}    1 row: median {m1:8.1f} µs (best {b1:8.1f});  "
            f"1000 rows: median {mb:9.1f} µs (best {bb:9.1f}), {mb / 1000:6.2f} µs/row"
        )

    if args.sklearn:
        from sklearn.ensemble import GradientBoostingClassifier

        t = time.perf_counter()
        clf = GradientBoostingClassifier(**meta["bench"]["model_args"]).fit(X[:n], y[:n])
        print(f"  scikit-learn retrained in {time.perf_counter() - t:.1f} s")
        assert np.allclose(clf.predict_proba(rows[: len(want)]), meta["probabilities"], atol=1e-5)
        m1, b1 = time_calls(lambda: clf.predict_proba(one), args.seconds)
        mb, bb = time_calls(lambda: clf.predict_proba(rows), args.seconds)
        print(
            f"  {'sklearn predict_proba':22}    1 row: median {m1:8.1f} µs (best {b1:8.1f});  "
            f"1000 rows: median {mb:9.1f} µs (best {bb:9.1f}), {mb / 1000:6.2f} µs/row"
        )


if __name__ == "__main__":
    main()
