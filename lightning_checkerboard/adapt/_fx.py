"""Rewriting one module's own ``forward`` with ``torch.fx``: resize → pad → conv calls become one call.

Each module is traced on its own, with every child module as a leaf, so the rewrite is local: a model
whose entry points call submodules directly (``vae.decode``, ``unet.up_blocks[0]``) runs the fused
code however it is entered. The rewritten graph's code is bound as that module's ``forward``; the
module keeps its class, its other methods, its children and its parameters, hence its state dict.
"""

from __future__ import annotations

import ast
import copy
import inspect
import logging
import textwrap
import types
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from lightning_checkerboard.adapt.layer import conv_refusal, fused_conv_call, mark_unpicklable, refuse, resize_conv2d
from lightning_checkerboard.adapt.patterns import (
    POINTWISE_FUNCTIONS,
    POINTWISE_METHODS,
    Resize,
    bind_conv2d,
    conv_call_padding,
    conv_padding,
    fusable_padding,
    is_pointwise_module,
    pad_of_call,
    pad_of_module,
    resize_of_call,
    resize_of_module,
)

__all__ = ["fuse_forward"]

log = logging.getLogger(__name__)


class _OwnForwardTracer(fx.Tracer):
    """Traces a module's own ``forward`` only: every child module is a leaf ``call_module`` node."""

    def __init__(self, root: nn.Module, helpers: tuple[Callable, ...] = ()) -> None:
        # The fused calls of a forward rewritten before stay one node each (and their conv a get_attr);
        # so do the helpers that refused symbolic values (see trace_or_reason).
        super().__init__(autowrap_functions=(fused_conv_call, resize_conv2d, *helpers))
        self._traced = root

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return m is not self._traced


def trace_or_reason(module: nn.Module, training: bool, grad: bool) -> tuple[fx.Graph, nn.Module] | str:
    """The graph of ``module``'s own forward, traced on a shallow copy, and that copy; else why not.

    The copy shares children and parameters but has its own attribute dict, so the tracer's tensor
    constants stay off the module. A forward that writes attributes on ``self`` has effects a graph
    does not keep: such a module is not traced, like one whose forward refuses symbolic values. The
    reason is one line: the tracer's error (its first line) or the attributes written.

    A module-level helper function that the forward calls and that refuses symbolic values (an assert
    or a branch on a shape, as BasicSR's ``pixel_unshuffle``) is kept as one opaque call instead, run
    as it is at every call, and the trace tried again (up to eight such helpers).
    """
    blocks = _unkept_blocks(type(module), "forward" if "forward" not in vars(module) else None)
    if blocks:
        return blocks
    helpers: tuple[Callable, ...] = ()
    for _ in range(_MAX_HELPERS + 1):
        view = copy.copy(module)
        view.training = training  # the root only: its children are leaves, never run
        if "forward" in vars(view):
            # torch.fx traces the class's forward; a forward set on the instance (rewritten by this package)
            # is traced through a throwaway subclass of the copy instead.
            function = getattr(vars(view).pop("forward"), "__func__", None)
            if function is None:
                return "its forward is set on the instance and is not a method"
            view.__class__ = type(type(module).__name__, (type(module),), {"forward": function})
        before = dict(vars(view))
        try:
            with torch.set_grad_enabled(grad):
                graph = _OwnForwardTracer(view, helpers).trace(view)
        except Exception as error:  # any forward may refuse symbolic values; that module is then left as is
            helper = _refusing_helper(error, type(view).forward)
            if helper is not None and helper not in helpers:
                helpers += (helper,)
                continue
            lines = str(error).strip().splitlines()
            return f"torch.fx cannot trace its forward: {type(error).__name__}: {lines[0] if lines else ''}".rstrip(
                ": ")
        after = {k: v for k, v in vars(view).items() if not k.startswith("_tensor_constant")}
        if after.keys() != before.keys() or any(after[k] is not before[k] for k in after):
            written = sorted(k for k in after.keys() | before.keys() if after.get(k) is not before.get(k))
            return f"its forward writes attributes on self ({', '.join(written)}), which a graph does not keep"
        return graph, view
    return f"torch.fx cannot trace its forward: more than {_MAX_HELPERS} helper functions refuse symbolic values"


_MAX_HELPERS = 8


def _unkept_blocks(cls: type, method: str | None, depth: int = 2) -> str:
    """Why a graph of ``cls.method`` would lose behaviour: a ``try`` or ``with`` block, in it or in a
    method of ``cls`` it calls on ``self`` (``depth`` levels down); ``""`` if none (or no source)."""
    function = getattr(cls, method, None) if method else None
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return ""
    called = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Try, getattr(ast, "TryStar", ast.Try))):
            return (f"{cls.__name__}.{method} has a try block, which a graph does not keep (an exception it "
                    "catches would escape)")
        if isinstance(node, (ast.With, ast.AsyncWith)):
            return (f"{cls.__name__}.{method} has a with block (grad mode, autocast, ...), which a graph does "
                    "not keep")
        target = node.func if isinstance(node, ast.Call) else None
        if (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self"
                and inspect.isfunction(getattr(cls, target.attr, None))):
            called.add(target.attr)
    for name in sorted(called - {method}) if depth else ():
        reason = _unkept_blocks(cls, name, depth - 1)
        if reason:
            return reason
    return ""


def _refusing_helper(error: BaseException, forward: Callable) -> Callable | None:
    """The module-level function that ``forward`` called and in which tracing failed, if there is one."""
    namespace = getattr(forward, "__globals__", {})
    code = getattr(forward, "__code__", None)
    frames, tb = [], error.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    callees = [f for f, caller in zip(frames[1:], frames) if caller.f_code is code]
    for frame in callees[-1:]:  # the forward's call that was running when tracing failed
        for value in namespace.values():
            if inspect.isfunction(value) and value.__code__ is frame.f_code and not (
                    value.__module__ or "").startswith("torch"):
                return value
    return None


def _trace(module: nn.Module, training: bool, grad: bool) -> tuple[fx.Graph, nn.Module] | None:
    """:func:`trace_or_reason`, with ``None`` (and the reason logged) for a module that cannot be traced."""
    traced = trace_or_reason(module, training, grad)
    if isinstance(traced, str):
        log.debug("fuse_resize_conv: %s left as is: %s", type(module).__name__, traced)
        return None
    return traced


def _input_of(node: fx.Node) -> Any:
    return node.args[0] if node.args else node.kwargs.get("input")


def _piece(node: Any, root: nn.Module, function: Callable, of_call: Callable, of_module: Callable) -> Any:
    """What a resize or pad node does (``of_call`` for a call of ``function``, ``of_module`` for a child)."""
    if not isinstance(node, fx.Node):
        return None
    if node.op == "call_function" and node.target is function:
        return of_call(node.args, node.kwargs)
    if node.op == "call_module":
        return of_module(root.get_submodule(node.target))
    return None


def _resize_of(node: Any, root: nn.Module) -> Resize | None:
    return _piece(node, root, F.interpolate, resize_of_call, resize_of_module)


def _pad_of(node: Any, root: nn.Module) -> str | None:
    return _piece(node, root, F.pad, pad_of_call, pad_of_module)


def _attr_shape(node: Any, root: nn.Module) -> tuple[int, ...] | None:
    if isinstance(node, fx.Node) and node.op == "get_attr":
        value = root
        for part in node.target.split("."):
            value = getattr(value, part, None)
        return tuple(value.shape) if isinstance(value, torch.Tensor) else None
    return None


def _conv_of(node: fx.Node, root: nn.Module) -> tuple[str, Callable[[fx.Graph, Any, dict], fx.Node]] | None:
    """A 3×3 conv node's padding kind and how to insert its fused call ``(graph, input, options) -> node``.

    A conv module is passed whole to :func:`fused_conv_call`, which reads its effective weight (its
    parametrizations and weight hooks) at every call; an ``F.conv2d`` call's weight and bias are the
    graph values it was given.
    """
    if node.op == "call_module":
        conv = root.get_submodule(node.target)
        # An adapter wrapping the conv (base_layer) is a site all the same, refused with its reason.
        padding = conv_padding(getattr(conv, "base_layer", conv))
        if padding is None:
            return None

        def call_module(graph: fx.Graph, x: Any, options: dict) -> fx.Node:
            return graph.call_function(fused_conv_call, (x, graph.get_attr(node.target)), options)

        return padding, call_module
    if node.op == "call_function" and node.target is torch.conv2d:
        call = bind_conv2d(node.args, node.kwargs)
        if call is None:
            return None
        padding = conv_call_padding(call, _attr_shape(call["weight"], root))

        def call_function(graph: fx.Graph, x: Any, options: dict) -> fx.Node:
            return graph.call_function(resize_conv2d, (x, call["weight"], call["bias"]), options)

        return (padding, call_function) if padding is not None else None
    return None


def _is_pointwise(node: Any, root: nn.Module) -> bool:
    """Whether ``node`` applies a pointwise activation (module, function or tensor method) to one input."""
    if not isinstance(node, fx.Node):
        return False
    if node.op == "call_module":
        return is_pointwise_module(root.get_submodule(node.target))
    if node.op == "call_function":
        return node.target in POINTWISE_FUNCTIONS
    return node.op == "call_method" and node.target in POINTWISE_METHODS


def _only_user(node: Any, user: fx.Node) -> bool:
    return isinstance(node, fx.Node) and list(node.users) == [user]


def _rewrite(graph: fx.Graph, root: nn.Module, report: bool = False) -> list[tuple[Resize, str]]:
    """Replace every exactly fusable resize → (pad) → 3×3 conv chain in ``graph``; return what was fused.

    A chain whose conv module cannot run fused (:func:`conv_refusal`) is kept, and with ``report`` said so.
    """
    fused = []
    for conv_node in list(graph.nodes):
        conv = _conv_of(conv_node, root)
        if conv is None:
            continue
        chain = [conv_node]
        pad, source = None, _input_of(conv_node)
        pad_kind = _pad_of(source, root)
        if pad_kind is not None and _only_user(source, chain[-1]):
            chain.append(source)
            pad, source = pad_kind, _input_of(source)
        # A pointwise activation right after a nearest resize commutes with it: it then runs before the
        # fused call, at the low resolution.
        activation = source if _is_pointwise(source, root) and _only_user(source, chain[-1]) else None
        if activation is not None:
            source = _input_of(activation)
        resize = _resize_of(source, root)
        if resize is None or not _only_user(source, activation if activation is not None else chain[-1]):
            continue
        if activation is not None and resize.mode != "nearest":
            continue
        padding = fusable_padding(resize, pad, conv[0])
        if padding is None:
            continue
        reason = conv_refusal(root.get_submodule(conv_node.target)) if conv_node.op == "call_module" else None
        if reason is not None:
            if report:
                refuse(f"{type(root).__name__}.{conv_node.target}", reason)
            continue
        chain.append(source)
        x = _input_of(source)
        if activation is not None:
            if activation.args:
                activation.args = (x, *activation.args[1:])
            else:
                activation.kwargs = {**activation.kwargs, "input": x}
            x = activation
        with graph.inserting_before(conv_node):
            new = conv[1](graph, x, {"mode": resize.mode, "scale": resize.scale, "padding": padding})
        conv_node.replace_all_uses_with(new)
        for node in chain:  # conv first: each node's only user is gone before it is erased
            graph.erase_node(node)
        fused.append((resize, padding))
    return fused


def fuse_forward(module: nn.Module) -> list[tuple[Resize, str]]:
    """Fuse the resize → pad → conv chains written in ``module``'s own ``forward``, in place.

    The module is traced four times (train and eval mode, with and without grad) and rewritten only if
    all four graphs agree, so a forward that branches on ``self.training`` or on grad mode is left as is.
    Other Python state a forward reads (a flag, a config value) is fixed at its value now.

    Returns:
        ``(resize, padding)`` of every chain fused; empty when the module was left unchanged.
    """
    traced = _trace(module, module.training, True)
    if traced is None or not _rewrite(*traced, report=True):
        return []
    codes = set()
    for training in (True, False):
        for grad in (True, False):
            other = _trace(module, training, grad)
            if other is None:
                return []
            codes.add(other[0].python_code("self").src)
    if len(codes) != 1:
        log.info("fuse_resize_conv: %s's forward depends on training or grad mode; left as is.",
                 type(module).__name__)
        return []
    graph, view = _trace(module, module.training, True)
    fused = _rewrite(graph, view)
    install_forward(module, graph, view, rewritten_by="fuse_resize_conv")
    return fused


def install_forward(module: nn.Module, graph: fx.Graph, view: nn.Module, *, rewritten_by: str) -> None:
    """Make the rewritten ``graph`` (traced from ``view``, a copy of ``module``) ``module``'s own ``forward``.

    The new forward lives on the instance, so pickling the module is refused with save advice
    (:func:`~lightning_checkerboard.adapt.layer.mark_unpicklable`).
    """
    graph.lint()
    for node in graph.nodes:
        # Constants the tracer stored on the copy (a tensor made inside forward) move to the module.
        if node.op == "get_attr" and "." not in node.target and not hasattr(module, node.target):
            setattr(module, node.target, getattr(view, node.target))
    code = graph.python_code("self")
    namespace = dict(code.globals)
    label = f"<forward of {type(module).__qualname__} rewritten by {rewritten_by}>"
    exec(compile(code.src, label, "exec"), namespace)  # noqa: S102
    mark_unpicklable(module, rewritten_by)
    module.forward = types.MethodType(namespace["forward"], module)
