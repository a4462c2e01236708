"""XGBoost and LightGBM: scikit-learn estimators in every way Lathe uses them (fit, predict_proba, get_params),
whose ONNX converters come from onnxmltools and register with skl2onnx here.

What each framework would only warn about is refused: a parameter XGBoost does not use, or one LightGBM
does not know, is a typo that would otherwise train a different model than the TrainingRun says.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

from .errors import TrainingFailed

# Not XGBRFClassifier: onnxmltools 1.16 converts its forest as a boosted sum, 0.88 off in probability.
ESTIMATORS = {
    "xgboost": {"classification": ("XGBClassifier",), "regression": ("XGBRegressor",)},
    "lightgbm": {"classification": ("LGBMClassifier",), "regression": ("LGBMRegressor",)},
}
NAMES = {"xgboost": "XGBoost", "lightgbm": "LightGBM"}
# How onnxmltools' converters learn the classifier's class count (skl2onnx's shape calculator) and the
# options that Lathe's export passes (zipmap off); registered once per class.
OPTIONS = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
_registered: set[type] = set()


def module(framework: str) -> Any:
    try:
        return importlib.import_module(framework)
    except ImportError as error:
        raise TrainingFailed(
            "FrameworkNotInstalled", f"{NAMES[framework]} is not installed in this image: {error}"
        ) from error


def estimators(framework: str, task: str = "classification") -> dict[str, type]:
    found = module(framework)
    return {name: getattr(found, name) for name in ESTIMATORS[framework][task]}


def errors(framework: str) -> tuple[type[BaseException], ...]:
    """What the framework raises for parameters it rejects (besides scikit-learn's ValueError and TypeError)."""
    if framework == "lightgbm":
        return (module("lightgbm").basic.LightGBMError,)
    return (module("xgboost").core.XGBoostError,)


def unknown(framework: str, model_class: type, parameters: dict[str, Any]) -> list[str]:
    """Parameters LightGBM would only print a warning about: neither the estimator's nor a LightGBM parameter
    or alias. (XGBoost's are caught when it warns, in ``fitting``.)"""
    if framework != "lightgbm":
        return []
    aliases = module("lightgbm").basic._ConfigAliases._get_all_param_aliases()
    known = set(model_class().get_params()) | {alias for names in aliases.values() for alias in names}
    return sorted(set(parameters) - known)


def defaults(framework: str) -> dict[str, Any]:
    """LightGBM prints its per-iteration notices to stdout unless told not to; a Lathe step logs its own."""
    return {"verbose": -1} if framework == "lightgbm" else {}


class fitting:
    """Turns XGBoost's 'Parameters: { ... } are not used' warning into a refusal."""

    def __init__(self, framework: str, name: str) -> None:
        self.framework, self.name = framework, name
        self._catch = warnings.catch_warnings(record=True)

    def __enter__(self) -> None:
        self.caught = self._catch.__enter__()
        warnings.simplefilter("always")

    def __exit__(self, *exc: object) -> None:
        self._catch.__exit__(*exc)
        for warning in self.caught:
            text = str(warning.message)
            if self.framework == "xgboost" and "are not used" in text and exc[0] is None:
                unused = text[text.index("Parameters:") :].strip() if "Parameters:" in text else text.strip()
                raise TrainingFailed("InvalidHyperparameters", f"{self.name}: {unused}")
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def register(model_class: type, task: str = "classification") -> None:
    """Teach skl2onnx to convert this class with onnxmltools' converter."""
    if model_class in _registered:
        return
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    if model_class.__module__.startswith("lightgbm"):
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm as convert

        alias = f"LightGbm{model_class.__name__}"
    else:
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost as convert

        alias = f"XGBoost{model_class.__name__}"
    if task == "regression":
        update_registered_converter(model_class, alias, calculate_linear_regressor_output_shapes, convert)
    else:
        shapes = calculate_linear_classifier_output_shapes
        update_registered_converter(model_class, alias, shapes, convert, options=OPTIONS)
    _registered.add(model_class)


def exact_thresholds(model: Any, graph: Any) -> None:
    """LightGBM splits float32 features at double thresholds (``x <= t``); onnxmltools rounds each to the
    nearest float32, which can land on a feature value above t and send that row the other way (0.8 off on
    one diabetes row). For a float32 x, ``x <= t`` holds exactly when ``x <= r``, r the largest float32 not
    above t: write r instead, found by (feature, rounded value) among the booster's own thresholds."""
    import numpy as np
    from onnx import helper

    if not type(model).__module__.startswith("lightgbm"):
        return
    exact: dict[tuple[int, float], float] = {}

    def walk(node: dict[str, Any]) -> None:
        if "split_feature" in node:
            t = float(node["threshold"])
            exact[(int(node["split_feature"]), float(np.float32(t)))] = t
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in model.booster_.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    for node in graph.graph.node:
        if not node.op_type.startswith("TreeEnsemble"):
            continue
        found = {a.name: a for a in node.attribute}
        features, values, modes = found["nodes_featureids"].ints, found["nodes_values"].floats, found["nodes_modes"]
        fixed = []
        for feature, value, mode in zip(features, values, modes.strings, strict=True):
            t = exact.get((int(feature), float(value))) if mode == b"BRANCH_LEQ" else None
            r = np.float32(value) if t is None else np.float32(t)
            fixed.append(float(np.nextafter(r, np.float32(-np.inf)) if t is not None and float(r) > t else r))
        node.attribute.remove(found["nodes_values"])
        node.attribute.append(helper.make_attribute("nodes_values", fixed))


def version(framework: str) -> str:
    return str(module(framework).__version__)
