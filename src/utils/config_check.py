"""Check a composed config before anything is built, so a bad value stops the run with one line, not a traceback.

Every ``_target_`` node (data, model and its nets and optimizers, trainer, callbacks, metrics, loggers) is
checked against the signature of the callable it names: no argument it does not take, each value of the type
its annotation asks for and within the bounds the constructor states (:mod:`src.utils.arguments`). Every
mandatory value (``???``) must be set and every interpolation must resolve.
"""
from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping
from typing import Any

from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from omegaconf.errors import InterpolationToMissingValueError, OmegaConfBaseException

from src.utils.arguments import annotations, expectation, fits, meaning_of, problem, show
from src.utils.errors import ConfigError, first_line, unresolved

#: What train() adds once the DataModule is built (the image shape the nets size themselves from): values
#: that interpolate it cannot be known yet and are checked by their constructors.
FILLED_AT_RUN = ("dataset",)
#: Keys of a ``_target_`` node that are Hydra's, not arguments of the callable.
_HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}


def check_config(cfg: DictConfig, choices: Mapping[str, Any] | None = None) -> None:
    """Raise :class:`ConfigError` naming the first value in ``cfg`` that cannot work, and its fix.

    ``choices``: Hydra's config group choices (``{"data": "image_folder", …}``), named in messages.
    """
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        for key in FILLED_AT_RUN:
            if key not in cfg:
                cfg[key] = "???"
    _walk(cfg, "", dict(choices or {}))


def _walk(node: DictConfig | ListConfig, path: str, choices: dict[str, Any]) -> None:
    keys = list(node.keys()) if isinstance(node, DictConfig) else list(range(len(node)))
    containers = []
    for key in keys:
        if not path and key in FILLED_AT_RUN:
            continue
        where = _join(path, key)
        if OmegaConf.is_missing(node, key):
            raise ConfigError(_missing(node, key, where, choices))
        try:
            value = node[key]
        except InterpolationToMissingValueError:
            continue  # depends on a value that is reported where it is missing, or is filled at run time
        except OmegaConfBaseException as error:
            raw = OmegaConf.to_container(node, resolve=False)[key]
            raise ConfigError(f"{where}={raw}: {unresolved(error)}") from None
        if isinstance(value, (DictConfig, ListConfig)):
            containers.append((value, where))
    if isinstance(node, DictConfig) and "_target_" in node:
        _check_target(node, path, choices)
    for value, where in containers:
        _walk(value, where, choices)


def _check_target(node: DictConfig, path: str, choices: dict[str, Any]) -> None:
    target = node._target_
    try:
        function = get_object(target)
    except Exception as error:
        raise ConfigError(f"{_join(path, '_target_')}={target}: cannot be imported ({first_line(error)}). "
                          f"Fix: name an importable class or function (check the spelling).") from None
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return  # a builtin without a signature: nothing to check against
    hints = annotations(function)
    named = {name: p for name, p in parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    for name in node.keys():
        where = _join(path, name)
        if name in _HYDRA_KEYS:
            continue
        if name not in named:
            if takes_any:
                continue
            raise ConfigError(f"{where}: {target} takes no argument {name!r}. Fix: remove {where}, or use one of "
                              f"{', '.join(named)}.")
        value = _plain(node, name)
        if value is _UNKNOWN:
            continue
        annotation = hints.get(name, inspect.Parameter.empty)
        if why := problem(value, annotation):
            raise ConfigError(f"{where}={show(value)}: {why}. Fix: {_fix(where, named[name], annotation)}")


_UNKNOWN = object()


def _plain(node: DictConfig, name: str) -> Any:
    """The value of ``node[name]`` as plain Python, or _UNKNOWN where it cannot be judged here (missing,
    unresolvable: reported by :func:`_walk`; a ``_target_`` node: built from, and checked as, its own node)."""
    try:
        value = node[name]
        if isinstance(value, DictConfig) and "_target_" in value:
            return _UNKNOWN
        return OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value
    except OmegaConfBaseException:
        return _UNKNOWN


def _fix(where: str, parameter: inspect.Parameter, annotation: Any) -> str:
    """A value that works: the constructor's default, else the example its Meaning gives."""
    default = parameter.default
    if default is not inspect.Parameter.empty and default is not None and fits(default, annotation):
        return f"{where}={show(default)}"
    meaning = meaning_of(annotation)
    if meaning and meaning.example is not None:
        return f"{where}={show(meaning.example)}"
    wanted = expectation(annotation)
    return f"set {where} to {wanted}." if len(wanted) < 40 else f"set {where} to one of the values above."


def _missing(node: DictConfig | ListConfig, key: Any, where: str, choices: dict[str, Any]) -> str:
    annotation = None
    if isinstance(node, DictConfig) and "_target_" in node:
        try:
            annotation = annotations(get_object(node._target_)).get(key)
        except Exception:  # an unimportable target is reported by its own check; here it only costs the hint
            annotation = None
    meaning = meaning_of(annotation)
    what = f" ({meaning.what})" if meaning else ""
    example = meaning.example if meaning and meaning.example is not None else "<value>"
    group = where.split(".")[0]
    needs = f"{group}={choices[group]} needs " if choices.get(group) else "pass "
    return f"{where} is not set{what}. Fix: {needs}{where}={show(example)}"


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)
