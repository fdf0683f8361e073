"""The registry of named Runge-Kutta methods.

Names are unambiguous on purpose: ``rk4`` is the *classic* fourth-order method (Kutta 1901, weights
1/6, 1/3, 1/3, 1/6); Kutta's 3/8 rule is ``rk38``. torchdiffeq's ``"rk4"`` is the 3/8 rule, i.e. dynlearn's
``rk38``. ``heun`` is Heun's *second*-order method (the explicit trapezoid rule); his third-order method is
``heun3``.

Every built-in tableau has its order proved symbolically when the registry is built. Users add their own
with :func:`register_tableau`.
"""

from __future__ import annotations

import difflib

from dynlearn._checks import as_flag
from dynlearn.integration.tableau import ButcherTableau

__all__ = ["register_tableau", "get_tableau", "available_tableaus"]

_REGISTRY: dict[str, ButcherTableau] = {}

# Common alternative spellings, resolved to the canonical name.
_ALIASES: dict[str, str] = {
    "forward_euler": "euler",
    "explicit_euler": "euler",
    "explicit_midpoint": "midpoint",
    "heun2": "heun",
    "explicit_trapezoid": "heun",
    "kutta3": "rk3",
    "rk4_classic": "rk4",
    "classic_rk4": "rk4",
    "rk4_38": "rk38",
    "kutta38": "rk38",
    "dormand_prince5": "dopri5",
    "implicit_euler": "backward_euler",
    "crank_nicolson": "trapezoid",
}


def register_tableau(tableau: ButcherTableau, *, overwrite: bool = False, verify: bool = True) -> ButcherTableau:
    """Add ``tableau`` to the registry under ``tableau.name`` and return it.

    With ``verify=True`` (the default) its declared order is first proved symbolically
    (:meth:`ButcherTableau.verify_order`), so a typo in a coefficient is caught here, not in a convergence
    plot. Registering a name that exists raises unless ``overwrite=True``.
    """
    if not isinstance(tableau, ButcherTableau):
        raise TypeError(f"tableau must be a ButcherTableau, got {type(tableau).__name__}")
    overwrite, verify = as_flag("overwrite", overwrite), as_flag("verify", verify)
    name = tableau.name
    if name in _ALIASES:
        raise ValueError(f"name {name!r} is an alias of the built-in scheme {_ALIASES[name]!r}; choose another name")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"a scheme named {name!r} is already registered; pass overwrite=True to replace it")
    if verify:
        tableau.verify_order()
    _REGISTRY[name] = tableau
    return tableau


def available_tableaus(*, explicit_only: bool = False) -> list[str]:
    """Sorted names of the registered schemes (only the explicit ones with ``explicit_only=True``)."""
    explicit_only = as_flag("explicit_only", explicit_only)
    return sorted(name for name, tableau in _REGISTRY.items() if tableau.is_explicit or not explicit_only)


def get_tableau(scheme: str | ButcherTableau) -> ButcherTableau:
    """The tableau registered as ``scheme`` (a name or alias); a ``ButcherTableau`` is returned unchanged.

    An unknown name raises ``ValueError`` listing the known names and suggesting the nearest ones.
    """
    if isinstance(scheme, ButcherTableau):
        return scheme
    if not isinstance(scheme, str):
        raise TypeError(f"scheme must be a registered name or a ButcherTableau, got {type(scheme).__name__}")
    key = scheme.strip().lower()
    key = _ALIASES.get(key, key)
    try:
        return _REGISTRY[key]
    except KeyError:
        pass
    candidates = list(_REGISTRY) + list(_ALIASES)
    nearest = difflib.get_close_matches(key, candidates, n=3, cutoff=0.5)
    suggestions = dict.fromkeys(_ALIASES.get(name, name) for name in nearest)
    hint = f" Did you mean {' or '.join(map(repr, suggestions))}?" if suggestions else ""
    raise ValueError(f"unknown scheme {scheme!r}.{hint} Known schemes: {', '.join(available_tableaus())}.")


def _builtin() -> list[ButcherTableau]:
    return [
        ButcherTableau(
            name="euler", a=[[0]], b=[1], c=[0], order=1,
            description="Forward Euler: x + dt f(t, x). Inside a training loop this is a ResNet block.",
        ),
        ButcherTableau(
            name="midpoint", a=[[0, 0], ["1/2", 0]], b=[0, 1], c=[0, "1/2"], order=2,
            description="Explicit midpoint (Runge 1895).",
        ),
        ButcherTableau(
            name="heun", a=[[0, 0], [1, 0]], b=["1/2", "1/2"], c=[0, 1], order=2,
            description="Heun's second-order method, the explicit trapezoid rule (torchdiffeq's 'heun2').",
        ),
        ButcherTableau(
            name="ralston", a=[[0, 0], ["2/3", 0]], b=["1/4", "3/4"], c=[0, "2/3"], order=2,
            description="Ralston's second-order method, minimal truncation-error bound.",
        ),
        ButcherTableau(
            name="heun3", a=[[0, 0, 0], ["1/3", 0, 0], [0, "2/3", 0]], b=["1/4", 0, "3/4"], c=[0, "1/3", "2/3"],
            order=3, description="Heun's third-order method (torchdiffeq's 'heun3').",
        ),
        ButcherTableau(
            name="rk3", a=[[0, 0, 0], ["1/2", 0, 0], [-1, 2, 0]], b=["1/6", "2/3", "1/6"], c=[0, "1/2", 1],
            order=3, description="Kutta's third-order method (1901).",
        ),
        ButcherTableau(
            name="ssprk3", a=[[0, 0, 0], [1, 0, 0], ["1/4", "1/4", 0]], b=["1/6", "1/6", "2/3"], c=[0, 1, "1/2"],
            order=3, description="Strong-stability-preserving RK3 of Shu and Osher (1988), SSP coefficient 1.",
        ),
        ButcherTableau(
            name="rk4",
            a=[[0, 0, 0, 0], ["1/2", 0, 0, 0], [0, "1/2", 0, 0], [0, 0, 1, 0]],
            b=["1/6", "1/3", "1/3", "1/6"], c=[0, "1/2", "1/2", 1], order=4,
            description="The classic fourth-order Runge-Kutta method (Kutta 1901). Not torchdiffeq's 'rk4'.",
        ),
        ButcherTableau(
            name="rk38",
            a=[[0, 0, 0, 0], ["1/3", 0, 0, 0], ["-1/3", 1, 0, 0], [1, -1, 1, 0]],
            b=["1/8", "3/8", "3/8", "1/8"], c=[0, "1/3", "2/3", 1], order=4,
            description="Kutta's 3/8 rule (1901); what torchdiffeq calls 'rk4'.",
        ),
        ButcherTableau(
            name="dopri5",
            a=[
                [0, 0, 0, 0, 0, 0, 0],
                ["1/5", 0, 0, 0, 0, 0, 0],
                ["3/40", "9/40", 0, 0, 0, 0, 0],
                ["44/45", "-56/15", "32/9", 0, 0, 0, 0],
                ["19372/6561", "-25360/2187", "64448/6561", "-212/729", 0, 0, 0],
                ["9017/3168", "-355/33", "46732/5247", "49/176", "-5103/18656", 0, 0],
                ["35/384", 0, "500/1113", "125/192", "-2187/6784", "11/84", 0],
            ],
            b=["35/384", 0, "500/1113", "125/192", "-2187/6784", "11/84", 0],
            c=[0, "1/5", "3/10", "4/5", "8/9", 1, 1],
            order=5,
            description=(
                "Dormand-Prince 5(4), fifth-order weights used at a fixed step (no error control). "
                "The seventh stage has zero weight (it is the first stage of the next step in the adaptive "
                "method), so a fixed step costs six evaluations."
            ),
        ),
        # Implicit methods: for analysis (stability functions, operator reconstruction, linear models through
        # dynlearn.stability_matrix); step and rollout refuse them.
        ButcherTableau(
            name="backward_euler", a=[[1]], b=[1], c=[1], order=1,
            description="Backward (implicit) Euler, L-stable. Implicit: analysis and linear models only.",
        ),
        ButcherTableau(
            name="trapezoid", a=[[0, 0], ["1/2", "1/2"]], b=["1/2", "1/2"], c=[0, 1], order=2,
            description="The implicit trapezoid rule (Crank-Nicolson), A-stable. Implicit: analysis and linear models only.",
        ),
    ]


for _tableau in _builtin():
    register_tableau(_tableau)
del _tableau
