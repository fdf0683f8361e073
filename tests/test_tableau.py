"""Butcher tableaus: structure checks, order conditions proved symbolically, the registry."""

from fractions import Fraction

import pytest
import sympy
import torch
from hypothesis import given
from hypothesis import strategies as st

import dynlearn
from dynlearn import ButcherTableau, available_tableaus, get_tableau, register_tableau
from dynlearn.integration.tableau import elementary_weight, rooted_trees, tree_density
from dynlearn.integration.tableaus import _REGISTRY

z = sympy.Symbol("z")


def test_rooted_tree_counts_follow_oeis_a000081():
    assert [len(rooted_trees(n)) for n in range(1, 8)] == [1, 1, 2, 4, 9, 20, 48]


def test_tree_densities_of_the_order_four_trees():
    # The four trees of order 4 have densities 4, 8, 12, 24 (Butcher's table).
    assert sorted(tree_density(t) for t in rooted_trees(4)) == [4, 8, 12, 24]


@pytest.mark.parametrize("name", available_tableaus())
def test_registered_tableau_has_exactly_its_order(name):
    tableau = get_tableau(name)
    tableau.verify_order()
    assert tableau.satisfies_order(min(tableau.order, 5))
    if tableau.order < 5:
        assert not tableau.satisfies_order(tableau.order + 1)


@pytest.mark.parametrize("name", available_tableaus(explicit_only=True))
def test_explicit_stability_polynomial_matches_exponential_to_its_order(name):
    tableau = get_tableau(name)
    poly = sympy.Poly(tableau.stability_function(z), z)
    assert poly.degree() <= tableau.stages
    for k in range(tableau.order + 1):
        assert poly.coeff_monomial(z**k) == sympy.Rational(1, sympy.factorial(k))
    if tableau.order == tableau.stages:  # s-stage methods of order s <= 4 share the truncated exponential
        assert poly.degree() == tableau.order


def test_required_methods_are_registered_with_unambiguous_names():
    for name in ["euler", "midpoint", "heun", "ralston", "rk3", "ssprk3", "rk4", "rk38", "dopri5"]:
        assert name in available_tableaus()
    assert get_tableau("rk4").b == tuple(sympy.Rational(n, 6) for n in (1, 2, 2, 1))
    assert get_tableau("rk38").b == tuple(sympy.Rational(n, 8) for n in (1, 3, 3, 1))
    assert get_tableau("forward_euler") is get_tableau("euler")


def test_implicit_tableaus_are_supported_for_analysis():
    backward_euler = ButcherTableau("backward_euler", a=[[1]], b=[1], c=[1], order=1)
    trapezoid = ButcherTableau("trapezoid", a=[[0, 0], ["1/2", "1/2"]], b=["1/2", "1/2"], c=[0, 1], order=2)
    gauss = ButcherTableau(
        "gauss2",
        a=[["1/4", "1/4 - sqrt(3)/6"], ["1/4 + sqrt(3)/6", "1/4"]],
        b=["1/2", "1/2"],
        c=["1/2 - sqrt(3)/6", "1/2 + sqrt(3)/6"],
        order=4,
    )
    for tableau in (backward_euler, trapezoid, gauss):
        assert not tableau.is_explicit
        tableau.verify_order()
    assert sympy.simplify(backward_euler.stability_function(z) - 1 / (1 - z)) == 0
    assert sympy.simplify(trapezoid.stability_function(z) - (1 + z / 2) / (1 - z / 2)) == 0
    with pytest.raises(ValueError, match="implicit"):
        dynlearn.step(lambda t, x: -x, 0.0, torch.ones(3, dtype=torch.float64), 0.1, backward_euler)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(a=[[0, 0], [1]], b=["1/2", "1/2"], c=[0, 1]), "square"),
        (dict(a=[[0, 0], [1, 0]], b=[1], c=[0, 1]), "b has 1 entries"),
        (dict(a=[[0, 0], [1, 0]], b=["1/2", "1/2"], c=[0, "1/2"]), "row sum"),
        (dict(a=[[0, 0], [1, 0]], b=["1/2", "1/3"], c=[0, 1]), "sum to 1"),
        (dict(a=[[0, 0], [1, 0]], b=[0.5, 0.5], c=[0, 1]), "float"),
        (dict(a=[], b=[], c=[]), "no rows"),
    ],
)
def test_malformed_tableaus_are_refused(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        ButcherTableau("bad", order=2, **kwargs)


def test_bad_name_and_order_are_refused():
    with pytest.raises(ValueError, match="name"):
        ButcherTableau("Bad Name", a=[[0]], b=[1], c=[0], order=1)
    with pytest.raises(ValueError, match="order"):
        ButcherTableau("zero", a=[[0]], b=[1], c=[0], order=0)


def test_wrong_declared_order_is_caught_both_ways():
    rk4 = get_tableau("rk4")
    too_high = ButcherTableau("rk4_claims_5", a=rk4.a, b=rk4.b, c=rk4.c, order=5)
    with pytest.raises(ValueError, match="fails the order-5 condition"):
        too_high.verify_order()
    too_low = ButcherTableau("rk4_claims_3", a=rk4.a, b=rk4.b, c=rk4.c, order=3)
    with pytest.raises(ValueError, match="satisfies every condition of order 4"):
        too_low.verify_order()
    typo = ButcherTableau(
        "rk4_typo", a=[[0, 0, 0, 0], ["1/2", 0, 0, 0], [0, "1/2", 0, 0], [0, 0, 1, 0]],
        b=["1/6", "1/3", "1/3", "1/6"], c=[0, "1/2", "1/2", 1], order=4,
    )
    typo.verify_order()  # sanity: the real one passes; now perturb one weight pair keeping sum b = 1
    broken = ButcherTableau("rk4_broken", a=typo.a, b=["1/6", "1/4", "5/12", "1/6"], c=typo.c, order=4)
    with pytest.raises(ValueError, match="fails the order-"):
        broken.verify_order()


@given(
    st.fractions(min_value=Fraction(1, 10), max_value=Fraction(3, 1), max_denominator=50)
)
def test_every_two_stage_member_of_the_second_order_family_is_second_order(alpha):
    # a21 = alpha, b = (1 - 1/(2 alpha), 1/(2 alpha)): midpoint (1/2), Heun (1), Ralston (2/3) are members.
    tableau = ButcherTableau(
        "family", a=[[0, 0], [alpha, 0]], b=[1 - 1 / (2 * alpha), 1 / (2 * alpha)], c=[0, alpha], order=2
    )
    tableau.verify_order()  # proves order 2 and that order 3 fails, for this alpha


def test_elementary_weights_of_rk4_reproduce_the_classic_conditions():
    a, b, _ = get_tableau("rk4").matrices()
    for tree in rooted_trees(4):
        assert elementary_weight(tree, a, b) == sympy.Rational(1, tree_density(tree))


def test_registry_accepts_user_tableaus_and_refuses_duplicates():
    mine = ButcherTableau("my_midpoint_variant", a=[[0, 0], ["1/3", 0]], b=[-Fraction(1, 2), "3/2"], c=[0, "1/3"],
                          order=2)
    try:
        assert register_tableau(mine) is mine
        assert get_tableau("my_midpoint_variant") is mine
        assert "my_midpoint_variant" in available_tableaus(explicit_only=True)
        with pytest.raises(ValueError, match="already registered"):
            register_tableau(mine)
        with pytest.raises(ValueError, match="overwrite must be True or False, got str 'no'"):
            register_tableau(mine, overwrite="no")  # a truthy string must not replace a scheme
        register_tableau(mine, overwrite=True)
        wrong = ButcherTableau("my_wrong", a=[[0, 0], ["1/3", 0]], b=["1/2", "1/2"], c=[0, "1/3"], order=2)
        with pytest.raises(ValueError, match="declared of order 2"):
            register_tableau(wrong)
        assert "my_wrong" not in available_tableaus()
    finally:
        _REGISTRY.pop("my_midpoint_variant", None)


def test_unknown_scheme_lists_known_ones_and_suggests_the_nearest():
    with pytest.raises(ValueError) as info:
        get_tableau("midpont")
    message = str(info.value)
    assert "Did you mean 'midpoint'" in message
    for name in available_tableaus():
        assert name in message
    with pytest.raises(TypeError):
        get_tableau(4)


def test_tableau_is_frozen_and_hashable():
    rk4 = get_tableau("rk4")
    with pytest.raises(AttributeError):
        rk4.order = 5
    assert hash(rk4) == hash(ButcherTableau("rk4", a=rk4.a, b=rk4.b, c=rk4.c, order=4, description=rk4.description))
    assert "1/6" in str(rk4)
