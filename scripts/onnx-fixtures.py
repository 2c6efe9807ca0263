#!/usr/bin/env python3
"""ONNX fixture models with onnxruntime's reference outputs.

Trains small scikit-learn, XGBoost and LightGBM models on data it makes
itself (fixed seeds), exports them with the real converters (skl2onnx,
onnxmltools), builds a few graphs the way `torch.onnx.export` writes an
`nn.Sequential` MLP (with onnx.helper: torch is not needed), runs each in
onnxruntime and writes, into tests/fixtures/onnx/:

    NAME.onnx   the model
    NAME.json   {"name", "producer", "task", "n_features", "classes",
                 "inputs", "label", "probabilities", "values", "ops"}

Floats are float32 values written as JSON numbers (full precision); a NaN
in "inputs" is written as null. "ops" lists "domain:OpType" in graph order
("ai.onnx" for the default domain). Failure fixtures (bad_*.onnx) come with a
small json holding "expect_error". The benchmark model goes to
tests/fixtures/onnx/bench/ (its 1000-row batch is rebuilt from the seed by
scripts/ort-trees-bench.py).

    pip install -r scripts/onnx-requirements.txt
    python3 scripts/onnx-fixtures.py [--out tests/fixtures/onnx]

Run it again and the files come out byte for byte the same (same versions).
"""
import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_iris, make_classification, make_regression
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

warnings.filterwarnings("ignore")

ROWS = 16  # fixture rows per model
BENCH = {  # shared with scripts/ort-trees-bench.py
    "make_classification": dict(
        n_samples=6000, n_features=20, n_informative=10, n_redundant=4, random_state=42
    ),
    "train_rows": 5000,  # X[:5000] trains, X[5000:6000] is the 1000-row batch
    "model": dict(n_estimators=100, max_depth=6, random_state=0),
}


# ---------------------------------------------------------------- helpers


def f32(x) -> float | None:
    v = float(np.float32(x))
    return None if np.isnan(v) else v


def rows_json(a: np.ndarray) -> list:
    a = np.asarray(a, dtype=np.float32)
    if a.ndim == 1:
        a = a.reshape(-1, 1)
    return [[f32(v) for v in row] for row in a]


def py_label(v):
    if isinstance(v, (bytes, np.bytes_)):
        return v.decode()
    if isinstance(v, (str, np.str_)):
        return str(v)
    return int(v)


def ops_of(model: onnx.ModelProto) -> list[str]:
    return [f"{n.domain or 'ai.onnx'}:{n.op_type}" for n in model.graph.node]


def normalize(model: onnx.ModelProto, name: str) -> onnx.ModelProto:
    """Makes the bytes reproducible: the converters list opset imports in set
    order (it varies with PYTHONHASHSEED) and onnxmltools names the graph with
    a fresh uuid."""
    ops = sorted(model.opset_import, key=lambda o: o.domain)
    del model.opset_import[:]
    model.opset_import.extend(ops)
    if len(model.graph.name) == 32 and all(c in "0123456789abcdef" for c in model.graph.name):
        model.graph.name = name
    return model


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(
        model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )


def pick_rows(X: np.ndarray, nan_rows: int = 0, seed: int = 0) -> np.ndarray:
    """ROWS rows of held-out data (the tail of X); `nan_rows` of them get NaNs."""
    x = np.array(X[-ROWS:], dtype=np.float32)
    if nan_rows:
        rng = np.random.default_rng(seed)
        for r in range(nan_rows):
            cols = rng.choice(x.shape[1], size=1 + r % 2, replace=False)
            x[r, cols] = np.nan
        x[nan_rows, :] = np.nan  # one row all missing
    return x


class Writer:
    def __init__(self, out: Path):
        self.out = out
        self.out.mkdir(parents=True, exist_ok=True)
        self.written: list[dict] = []
        self.pending: str | None = None

    def save(self, name: str, model: onnx.ModelProto, meta: dict, sub: str = "") -> None:
        d = self.out / sub if sub else self.out
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{name}.onnx").write_bytes(normalize(model, name).SerializeToString())
        (d / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
        self.written.append(meta)
        print(f"  {sub + '/' if sub else ''}{name}: {', '.join(meta.get('ops', []))}")
        if self.pending:
            print(self.pending)
            self.pending = None

    def check(self, name, got, want, labels=None, want_labels=None):
        """Compares onnxruntime with the trained model (a sanity check only)."""
        diff = float(np.nanmax(np.abs(np.asarray(got, dtype=np.float64) - np.asarray(want, dtype=np.float64))))
        scale = max(1.0, float(np.nanmax(np.abs(np.asarray(want, dtype=np.float64)))))
        bad = [] if labels is None else [i for i, (a, b) in enumerate(zip(labels, want_labels)) if a != b]
        flag = "" if diff / scale < 1e-4 and not bad else "  <-- CHECK"
        self.pending = (f"    vs trained model: max |diff| {diff:.3g}" + (f", label mismatch rows {bad}" if bad else "") + flag)

    def classifier(self, name, producer, model, classes, x, sub="", extra=None, est=None):
        sess = session(model)
        outs = sess.run(None, {sess.get_inputs()[0].name: x})
        label, proba = outs[0], outs[1]
        classes = [py_label(c) for c in classes]
        if isinstance(proba, list):  # ZipMap: a list of {class: p}
            probs = [[f32(d[c]) for c in classes] for d in proba]
        else:
            probs = rows_json(proba)
        if est is not None:
            self.check(name, np.array(probs, dtype=np.float64), est.predict_proba(x),
                       [py_label(v) for v in np.asarray(label).reshape(-1)],
                       [py_label(v) for v in est.predict(x)])
        meta = {
            "name": name,
            "producer": producer,
            "task": "classification",
            "n_features": int(x.shape[1]),
            "classes": classes,
            "inputs": rows_json(x),
            "label": [py_label(v) for v in np.asarray(label).reshape(-1)],
            "probabilities": probs,
            "values": None,
            "ops": ops_of(model),
        }
        if extra:
            meta.update(extra)
        self.save(name, model, meta, sub)

    def regressor(self, name, producer, model, x, task="regression", extra=None, est=None):
        sess = session(model)
        (values,) = sess.run(None, {sess.get_inputs()[0].name: x})
        if est is None and producer == "torch-like":
            from onnx.reference import ReferenceEvaluator

            est = lambda x: ReferenceEvaluator(model).run(None, {"input": x})[0]  # noqa: E731
        if est is not None:
            self.check(name, values.reshape(len(x), -1), np.asarray(est(x)).reshape(len(x), -1))
        meta = {
            "name": name,
            "producer": producer,
            "task": task,
            "n_features": int(x.shape[1]),
            "classes": None,
            "inputs": rows_json(x),
            "label": None,
            "probabilities": None,
            "values": rows_json(values),
            "ops": ops_of(model),
        }
        if extra:
            meta.update(extra)
        self.save(name, model, meta)


# ---------------------------------------------------------------- skl2onnx


def sk(est, n: int, zipmap: bool = True) -> onnx.ModelProto:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    options = None if zipmap else {"zipmap": False}
    return to_onnx(
        est, initial_types=[("input", FloatTensorType([None, n]))], options=options
    )


def clf_data(n_features=6, n_classes=3, seed=0, n_samples=400):
    X, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=min(n_features, 4),
        n_redundant=0,
        n_classes=n_classes,
        n_clusters_per_class=1,
        random_state=seed,
    )
    return X.astype(np.float32), y


def reg_data(n_features=5, n_targets=1, seed=0, n_samples=300):
    X, y = make_regression(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=n_features,
        n_targets=n_targets,
        noise=5.0,
        random_state=seed,
    )
    return X.astype(np.float32), y


def with_nans(X: np.ndarray, frac=0.1, seed=0) -> np.ndarray:
    X = X.copy()
    mask = np.random.default_rng(seed).random(X.shape) < frac
    X[mask] = np.nan
    return X


def fit_tail(est, X, y):
    """Fit on all but the last ROWS rows (kept as fixture inputs)."""
    return est.fit(X[:-ROWS], y[:-ROWS])


def sklearn_fixtures(w: Writer) -> None:
    P = "skl2onnx"

    # linear regressors
    X, y = reg_data(5, 1, seed=1)
    m = fit_tail(LinearRegression(), X, y)
    w.regressor("sk_linreg", P, sk(m, 5), pick_rows(X), est=m.predict)
    X, y = reg_data(4, 3, seed=2)
    m = fit_tail(Ridge(alpha=1.0), X, y)
    w.regressor("sk_ridge_multi", P, sk(m, 4), pick_rows(X), est=m.predict)
    X, y = reg_data(6, 1, seed=3)
    m = fit_tail(Lasso(alpha=0.5), X, y)
    w.regressor("sk_lasso", P, sk(m, 6), pick_rows(X), est=m.predict)

    # logistic regression
    X, y = clf_data(5, 2, seed=4)
    m = fit_tail(LogisticRegression(), X, y)
    w.classifier("sk_logreg_binary", P, sk(m, 5), m.classes_, pick_rows(X), est=m)
    X, y = clf_data(6, 3, seed=5)
    m = fit_tail(LogisticRegression(), X, y)
    w.classifier("sk_logreg_multi", P, sk(m, 6), m.classes_, pick_rows(X), est=m)
    w.classifier(
        "sk_logreg_multi_nozipmap", P, sk(m, 6, zipmap=False), m.classes_, pick_rows(X), est=m
    )

    # single trees
    X, y = clf_data(5, 3, seed=6)
    m = fit_tail(DecisionTreeClassifier(max_depth=4, random_state=0), X, y)
    w.classifier("sk_dtree_clf", P, sk(m, 5), m.classes_, pick_rows(X), est=m)
    yl = np.array([3, 7, 11])[y]
    m = fit_tail(DecisionTreeClassifier(max_depth=4, random_state=0), X, yl)
    w.classifier("sk_dtree_intlabels", P, sk(m, 5), m.classes_, pick_rows(X), est=m)
    X, y = reg_data(4, 1, seed=7)
    m = fit_tail(DecisionTreeRegressor(max_depth=4, random_state=0), X, y)
    w.regressor("sk_dtree_reg", P, sk(m, 4), pick_rows(X), est=m.predict)

    # forests
    X, y = clf_data(6, 3, seed=8)
    m = fit_tail(RandomForestClassifier(n_estimators=6, max_depth=4, random_state=0), X, y)
    w.classifier("sk_rf_clf", P, sk(m, 6), m.classes_, pick_rows(X), est=m)
    w.classifier("sk_rf_clf_nozipmap", P, sk(m, 6, zipmap=False), m.classes_, pick_rows(X), est=m)
    X, y = reg_data(5, 1, seed=9)
    m = fit_tail(RandomForestRegressor(n_estimators=6, max_depth=4, random_state=0), X, y)
    w.regressor("sk_rf_reg", P, sk(m, 5), pick_rows(X), est=m.predict)
    X, y = clf_data(4, 3, seed=10)
    m = fit_tail(ExtraTreesClassifier(n_estimators=6, max_depth=4, random_state=0), X, y)
    w.classifier("sk_et_clf", P, sk(m, 4), m.classes_, pick_rows(X), est=m)
    X, y = reg_data(4, 1, seed=11)
    m = fit_tail(ExtraTreesRegressor(n_estimators=6, max_depth=4, random_state=0), X, y)
    w.regressor("sk_et_reg", P, sk(m, 4), pick_rows(X), est=m.predict)

    # gradient boosting
    gb = dict(n_estimators=8, max_depth=3, random_state=0)
    X, y = clf_data(5, 2, seed=12)
    m = fit_tail(GradientBoostingClassifier(**gb), X, y)
    w.classifier("sk_gb_binary", P, sk(m, 5), m.classes_, pick_rows(X), est=m)
    X, y = clf_data(5, 3, seed=13)
    m = fit_tail(GradientBoostingClassifier(**gb), X, y)
    w.classifier("sk_gb_multi", P, sk(m, 5), m.classes_, pick_rows(X), est=m)
    X, y = reg_data(5, 1, seed=14)
    m = fit_tail(GradientBoostingRegressor(**gb), X, y)
    w.regressor("sk_gb_reg", P, sk(m, 5), pick_rows(X), est=m.predict)

    # histogram gradient boosting, with missing values in training and inputs
    hgb = dict(max_iter=8, max_depth=3, max_leaf_nodes=8, random_state=0, early_stopping=False)
    X, y = clf_data(5, 3, seed=15)
    X = with_nans(X, seed=15)
    m = fit_tail(HistGradientBoostingClassifier(**hgb), X, y)
    w.classifier("sk_hgb_clf", P, sk(m, 5), m.classes_, pick_rows(X, nan_rows=3, seed=15), est=m)
    X, y = reg_data(5, 1, seed=16)
    X = with_nans(X, seed=16)
    m = fit_tail(HistGradientBoostingRegressor(**hgb), X, y)
    w.regressor("sk_hgb_reg", P, sk(m, 5), pick_rows(X, nan_rows=3, seed=16), est=m.predict)

    # MLPs
    X, y = clf_data(6, 3, seed=17)
    for act in ("relu", "tanh", "logistic"):
        m = fit_tail(
            MLPClassifier(hidden_layer_sizes=(8, 6), activation=act, max_iter=300, random_state=0),
            X,
            y,
        )
        w.classifier(f"sk_mlp_{act}", P, sk(m, 6), m.classes_, pick_rows(X), est=m)
    X, y = clf_data(5, 2, seed=18)
    m = fit_tail(MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=0), X, y)
    w.classifier("sk_mlp_binary", P, sk(m, 5), m.classes_, pick_rows(X), est=m)
    X, y = reg_data(4, 1, seed=19)
    m = fit_tail(
        MLPRegressor(hidden_layer_sizes=(10,), max_iter=500, learning_rate_init=0.01, random_state=0),
        X,
        y,
    )
    w.regressor("sk_mlp_reg", P, sk(m, 4), pick_rows(X), est=m.predict)

    # pipelines
    iris = load_iris()
    Xi = iris.data.astype(np.float32)
    yi = np.array(iris.target_names)[iris.target]  # "setosa", "versicolor", "virginica"
    perm = np.random.default_rng(20).permutation(len(Xi))
    Xi, yi = Xi[perm], yi[perm]
    m = fit_tail(make_pipeline(StandardScaler(), LogisticRegression()), Xi, yi)
    w.classifier("sk_pipeline_iris", P, sk(m, 4), m.classes_, pick_rows(Xi), est=m)

    X, y = clf_data(5, 3, seed=21)
    m = fit_tail(
        make_pipeline(MinMaxScaler(), RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0)),
        X,
        y,
    )
    w.classifier("sk_pipe_minmax_rf", P, sk(m, 5), m.classes_, pick_rows(X), est=m)
    X, y = reg_data(4, 1, seed=22)
    m = fit_tail(
        make_pipeline(
            RobustScaler(),
            MLPRegressor(hidden_layer_sizes=(8,), max_iter=500, learning_rate_init=0.01, random_state=0),
        ),
        X,
        y,
    )
    w.regressor("sk_pipe_robust_mlp", P, sk(m, 4), pick_rows(X), est=m.predict)
    X, y = clf_data(5, 2, seed=23)
    m = fit_tail(
        make_pipeline(MaxAbsScaler(), GradientBoostingClassifier(n_estimators=6, max_depth=3, random_state=0)),
        X,
        y,
    )
    w.classifier("sk_pipe_maxabs_gb", P, sk(m, 5), m.classes_, pick_rows(X), est=m)


# ---------------------------------------------------------------- onnxmltools

ML_OPSET = 15


def xgb_fixtures(w: Writer) -> None:
    import onnxmltools
    from onnxmltools.convert.common.data_types import FloatTensorType
    from xgboost import XGBClassifier, XGBRegressor

    P = "onnxmltools"
    kw = dict(n_estimators=6, max_depth=3, learning_rate=0.3, n_jobs=1, random_state=0, tree_method="exact")

    def conv(m, n):
        return onnxmltools.convert_xgboost(
            m, initial_types=[("input", FloatTensorType([None, n]))], target_opset=ML_OPSET
        )

    X, y = clf_data(5, 2, seed=30)
    X = with_nans(X, 0.15, seed=30)
    m = fit_tail(XGBClassifier(**kw), X, y)
    w.classifier("xgb_binary", P, conv(m, 5), m.classes_, pick_rows(X, nan_rows=3, seed=30), est=m)
    X, y = clf_data(5, 3, seed=31)
    X = with_nans(X, 0.15, seed=31)
    m = fit_tail(XGBClassifier(**kw), X, y)
    w.classifier("xgb_multi", P, conv(m, 5), m.classes_, pick_rows(X, nan_rows=3, seed=31), est=m)
    X, y = reg_data(5, 1, seed=32)
    X = with_nans(X, 0.15, seed=32)
    m = fit_tail(XGBRegressor(**kw), X, y)
    w.regressor("xgb_reg", P, conv(m, 5), pick_rows(X, nan_rows=3, seed=32), est=m.predict)


def lgbm_fixtures(w: Writer) -> None:
    import onnxmltools
    from lightgbm import LGBMClassifier, LGBMRegressor
    from onnxmltools.convert.common.data_types import FloatTensorType

    P = "onnxmltools"
    kw = dict(
        n_estimators=6, max_depth=3, num_leaves=8, min_child_samples=5, random_state=0,
        n_jobs=1, deterministic=True, force_row_wise=True, verbose=-1,
    )

    def conv(m, n):
        return onnxmltools.convert_lightgbm(
            m, initial_types=[("input", FloatTensorType([None, n]))], target_opset=ML_OPSET
        )

    X, y = clf_data(5, 2, seed=40)
    X = with_nans(X, 0.15, seed=40)
    m = fit_tail(LGBMClassifier(**kw), X, y)
    w.classifier("lgbm_binary", P, conv(m, 5), m.classes_, pick_rows(X, nan_rows=3, seed=40), est=m)
    X, y = clf_data(5, 3, seed=41)
    m = fit_tail(LGBMClassifier(**kw), X, y)
    w.classifier("lgbm_multi", P, conv(m, 5), m.classes_, pick_rows(X), est=m)
    X, y = reg_data(5, 1, seed=42)
    m = fit_tail(LGBMRegressor(**kw), X, y)
    w.regressor("lgbm_reg", P, conv(m, 5), pick_rows(X), est=m.predict)


# ---------------------------------------------------------------- torch-like


class TorchGraph:
    """Writes nodes, names and initializers the way torch.onnx.export (opset 17)
    does for an nn.Sequential: nodes "/i/Op", outputs "/i/Op_output_0",
    parameters "i.weight" / "i.bias" ([out, in] weights), input "input" with
    a "batch_size" dim_param, output "output"."""

    def __init__(self, n_in: int, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits = [], []
        self.x, self.width, self.n_in = "input", n_in, n_in
        self.matmul_count = 0

    def _out(self, i, op):
        return f"/{i}/{op}_output_0"

    def linear_params(self, i, n_out):
        w = (self.rng.uniform(-1, 1, (n_out, self.width)) / np.sqrt(self.width)).astype(np.float32)
        b = self.rng.uniform(-0.5, 0.5, (n_out,)).astype(np.float32)
        return w, b

    def gemm(self, i, n_out):
        w, b = self.linear_params(i, n_out)
        self.inits += [numpy_helper.from_array(w, f"{i}.weight"), numpy_helper.from_array(b, f"{i}.bias")]
        y = self._out(i, "Gemm")
        self.nodes.append(
            helper.make_node("Gemm", [self.x, f"{i}.weight", f"{i}.bias"], [y], name=f"/{i}/Gemm",
                             alpha=1.0, beta=1.0, transB=1)
        )
        self.x, self.width = y, n_out

    def matmul(self, i, n_out):
        # torch's exporter writes Linear on a non-2D input as MatMul with a
        # pre-transposed [in, out] constant named onnx::MatMul_<id>, then Add.
        w, b = self.linear_params(i, n_out)
        wt = f"onnx::MatMul_{100 + self.matmul_count}"
        self.matmul_count += 1
        self.inits += [numpy_helper.from_array(np.ascontiguousarray(w.T), wt),
                       numpy_helper.from_array(b, f"{i}.bias")]
        mm = self._out(i, "MatMul")
        y = self._out(i, "Add")
        self.nodes += [
            helper.make_node("MatMul", [self.x, wt], [mm], name=f"/{i}/MatMul"),
            helper.make_node("Add", [f"{i}.bias", mm], [y], name=f"/{i}/Add"),
        ]
        self.x, self.width = y, n_out

    def act(self, i, op, **attrs):
        y = self._out(i, op)
        self.nodes.append(helper.make_node(op, [self.x], [y], name=f"/{i}/{op}", **attrs))
        self.x = y

    def model(self) -> onnx.ModelProto:
        # the last node writes "output"
        last = self.nodes[-1]
        last.output[0] = "output"
        graph = helper.make_graph(
            self.nodes,
            "main_graph",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch_size", self.n_in])],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch_size", self.width])],
            self.inits,
        )
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="pytorch", producer_version="2.1.0")
        m.ir_version = 8
        onnx.checker.check_model(m)
        return m


def torch_fixtures(w: Writer) -> None:
    P = "torch-like"
    rng = np.random.default_rng(50)

    # Linear(6,16) ReLU Linear(16,4) Softmax(dim=-1)
    g = TorchGraph(6, seed=51)
    g.gemm(0, 16); g.act(1, "Relu"); g.gemm(2, 4); g.act(3, "Softmax", axis=-1)
    w.regressor("torch_mlp_gemm", P, g.model(), rng.normal(size=(ROWS, 6)).astype(np.float32), task="network")

    # Linear(5,8) Sigmoid Linear(8,6) Tanh Linear(6,3) LogSoftmax(dim=-1), as MatMul+Add
    g = TorchGraph(5, seed=52)
    g.matmul(0, 8); g.act(1, "Sigmoid"); g.matmul(2, 6); g.act(3, "Tanh"); g.matmul(4, 3)
    g.act(5, "LogSoftmax", axis=-1)
    w.regressor("torch_mlp_matmul", P, g.model(), rng.normal(size=(ROWS, 5)).astype(np.float32), task="network")

    # Flatten Linear(4,12) LeakyReLU Linear(12,2)
    g = TorchGraph(4, seed=53)
    g.act(0, "Flatten", axis=1); g.gemm(1, 12); g.act(2, "LeakyRelu", alpha=0.01); g.gemm(3, 2)
    w.regressor("torch_mlp_leaky", P, g.model(), rng.normal(size=(ROWS, 4)).astype(np.float32))

    # Linear(3,8) ReLU Linear(8,1) Sigmoid
    g = TorchGraph(3, seed=54)
    g.gemm(0, 8); g.act(1, "Relu"); g.gemm(2, 1); g.act(3, "Sigmoid")
    w.regressor("torch_mlp_binary", P, g.model(), rng.normal(size=(ROWS, 3)).astype(np.float32))


# ---------------------------------------------------------------- failures


def bad_fixtures(w: Writer) -> None:
    out = w.out

    def note(name, expect, **kw):
        (out / f"{name}.json").write_text(json.dumps({"name": name, "expect_error": expect, **kw}, indent=1) + "\n")
        print(f"  {name}: {expect}")

    X, y = clf_data(4, 2, seed=60)
    m = sk(SVC(kernel="rbf", probability=False).fit(X, y), 4)
    (out / "bad_unsupported_op.onnx").write_bytes(normalize(m, "svc").SerializeToString())
    note("bad_unsupported_op", "unsupported operator ai.onnx.ml:SVMClassifier", ops=ops_of(m))

    node = helper.make_node("TopK", ["input", "k"], ["values", "indices"], axis=1)
    graph = helper.make_graph(
        [node], "topk",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 5])],
        [helper.make_tensor_value_info("values", TensorProto.FLOAT, ["n", 2]),
         helper.make_tensor_value_info("indices", TensorProto.INT64, ["n", 2])],
        [numpy_helper.from_array(np.array([2], dtype=np.int64), "k")],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    (out / "bad_unsupported_topk.onnx").write_bytes(m.SerializeToString())
    note("bad_unsupported_topk", "unsupported operator ai.onnx:TopK", ops=ops_of(m))

    whole = (out / "sk_linreg.onnx").read_bytes()
    (out / "bad_truncated.onnx").write_bytes(whole[: len(whole) // 2])
    note("bad_truncated", "not a valid ONNX protobuf (truncated: first half of sk_linreg.onnx)")

    (out / "bad_not_protobuf.onnx").write_bytes(b"this is not an onnx model\n")
    note("bad_not_protobuf", "not a valid ONNX protobuf")


# ---------------------------------------------------------------- benchmark


def bench_fixture(w: Writer) -> None:
    X, y = make_classification(**BENCH["make_classification"])
    X = X.astype(np.float32)
    n = BENCH["train_rows"]
    m = GradientBoostingClassifier(**BENCH["model"]).fit(X[:n], y[:n])
    w.classifier(
        "gb_bench_100x6_20f", "skl2onnx", sk(m, X.shape[1]), m.classes_, X[n : n + ROWS], sub="bench", est=m,
        extra={"bench": {"make_classification": BENCH["make_classification"], "train_rows": n,
                         "batch": "X[5000:6000] of make_classification(...) as float32",
                         "model": "GradientBoostingClassifier(**model)", "model_args": BENCH["model"]}},
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "tests/fixtures/onnx"))
    parser.add_argument("--no-bench", action="store_true", help="skip the 100-tree benchmark model")
    args = parser.parse_args()
    w = Writer(Path(args.out))
    print(f"onnxruntime {ort.__version__}, onnx {onnx.__version__} -> {w.out}")
    sklearn_fixtures(w)
    xgb_fixtures(w)
    lgbm_fixtures(w)
    torch_fixtures(w)
    bad_fixtures(w)
    if not args.no_bench:
        bench_fixture(w)
    print(f"{len(w.written)} fixtures")


if __name__ == "__main__":
    main()
