"""The native row kernels against the torch expressions they replace, and what they refuse."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recsys_rbm.accel import native

pytestmark = pytest.mark.skipif(not native.available(), reason="the native kernels are not built")


def _products_problem(dtype, block, width=37, n_rows=60, n_cases=5, n_entries=40):
    generator = torch.Generator().manual_seed(block)
    table = torch.randn(n_rows, width, generator=generator, dtype=dtype)
    vectors = torch.randn(n_cases, width, generator=generator, dtype=dtype)
    base = torch.randint(0, n_rows - block + 1, (n_entries,), generator=generator)
    cases = torch.randint(0, n_cases, (n_entries,), generator=generator)
    return table, base, cases, vectors


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("block", [1, 2, 5, 10, 13])  # 2..10 have unrolled loops; 1 and 13 go row by row
def test_block_products_are_each_entrys_rows_times_its_cases_vector(dtype, block):
    table, base, cases, vectors = _products_problem(dtype, block)
    out = torch.full((base.shape[0], block), float("nan"), dtype=dtype)
    assert native.block_products(table, base, cases, vectors, block, out)
    expected = torch.stack([table[b : b + block] @ vectors[c] for b, c in zip(base, cases, strict=True)])
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out, expected, rtol=tolerance, atol=tolerance)


def test_block_products_add_the_offsets_rows_combined_from_their_coordinates():
    table, base, cases, vectors = _products_problem(torch.float64, 4)
    offsets = torch.randn(table.shape[0], 2, dtype=torch.float64)
    out = torch.empty(base.shape[0], 4, dtype=torch.float64)
    assert native.block_products(table, base, cases, vectors, 4, out, (offsets, (0.5, -2.0)))
    combined = 0.5 * offsets[:, 0] - 2.0 * offsets[:, 1]
    expected = torch.stack(
        [table[b : b + 4] @ vectors[c] + combined[b : b + 4] for b, c in zip(base, cases, strict=True)]
    )
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("weighted", [False, True])
def test_add_rows_adds_each_cases_row_scaled_into_every_coordinate(dtype, weighted):
    generator = torch.Generator().manual_seed(0)
    storage = torch.randn(30, 2, 19, generator=generator, dtype=dtype)
    per_case = torch.randn(6, 19, generator=generator, dtype=dtype)
    rows = torch.randint(0, 30, (200,), generator=generator)  # many repeats
    cases = torch.randint(0, 6, (200,), generator=generator)
    weights = torch.rand(200, generator=generator, dtype=dtype) if weighted else None
    coefs = (0.25, -3.0)
    values = per_case[cases] * (weights[:, None] if weighted else 1.0)
    expected = storage.clone()
    for c, coef in enumerate(coefs):
        expected[:, c].index_add_(0, rows, coef * values)
    assert native.add_rows(storage, rows, cases, per_case, weights, coefs)
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(storage, expected, rtol=tolerance, atol=tolerance)


def test_the_sum_over_repeated_rows_does_not_depend_on_the_number_of_threads():
    generator = torch.Generator().manual_seed(1)
    per_case = torch.randn(8, 64, generator=generator)
    rows = torch.randint(0, 7, (5000,), generator=generator)
    cases = torch.randint(0, 8, (5000,), generator=generator)
    results = []
    threads = torch.get_num_threads()
    try:
        for n_threads in (1, 2, 3):
            torch.set_num_threads(n_threads)
            storage = torch.zeros(7, 1, 64)
            assert native.add_rows(storage, rows, cases, per_case, None, (1.0,))
            results.append(storage)
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(results[0], other) for other in results[1:])


def test_an_index_out_of_range_is_an_error_and_nothing_is_written():
    table, base, cases, vectors = _products_problem(torch.float32, 4)
    out = torch.zeros(base.shape[0], 4)
    with pytest.raises(IndexError, match="out of range"):
        native.block_products(table, torch.full_like(base, 57), cases, vectors, 4, out)  # rows 57..60 of 60
    with pytest.raises(IndexError, match="out of range"):
        native.block_products(table, base, torch.full_like(cases, -1), vectors, 4, out)
    assert not out.any()
    storage = torch.zeros(5, 2, 3)
    with pytest.raises(IndexError, match="out of range"):
        native.add_rows(storage, torch.tensor([0, 5]), torch.tensor([0, 0]), torch.ones(1, 3), None, (1.0, 1.0))
    assert not storage.any()


def test_misshapen_arguments_are_refused_before_any_pointer_is_read():
    table, base, cases, vectors = _products_problem(torch.float32, 3)
    with pytest.raises(ValueError, match="disagree in shape"):
        native.block_products(table, base, cases, vectors[:, :5].contiguous(), 3, torch.empty(base.shape[0], 3))
    with pytest.raises(ValueError, match="offsets do not match"):
        native.block_products(table, base, cases, vectors, 3, torch.empty(base.shape[0], 3), (torch.ones(2, 1), (1.0,)))
    with pytest.raises(ValueError, match="disagree in shape"):
        native.add_rows(torch.zeros(5, 2, 3), torch.tensor([0]), torch.tensor([0]), torch.ones(1, 4), None, (1.0, 1.0))


def test_where_a_kernel_does_not_apply_it_says_so_and_the_caller_takes_the_torch_path(monkeypatch):
    table, base, cases, vectors = _products_problem(torch.float32, 2)
    out = torch.zeros(base.shape[0], 2)
    assert not native.block_products(table.T.contiguous().T, base, cases, vectors, 2, out)  # not contiguous
    assert not native.block_products(table.half(), base, cases, vectors.half(), 2, out.half())  # no float16 kernel
    assert not native.block_products(table, base.int(), cases, vectors, 2, out)  # int32 indices
    monkeypatch.setenv(native.ENVIRONMENT_SWITCH, "0")
    assert not native.available()
    assert not native.block_products(table, base, cases, vectors, 2, out)
    assert not out.any()


def test_group_order_sorts_the_positions_by_key_stably():
    keys = torch.tensor([3, 0, 3, 1, 0, 3])
    order = native.group_order(keys, 4)
    assert order.tolist() == [1, 4, 3, 0, 2, 5]
    torch.testing.assert_close(order, torch.argsort(keys, stable=True))
    with pytest.raises(IndexError, match="out of range"):
        native.group_order(keys, 3)


def test_a_visiting_order_changes_neither_the_products_nor_the_sums():
    table, base, cases, vectors = _products_problem(torch.float64, 5)
    order = native.group_order(base, table.shape[0])
    plain, ordered = (
        torch.empty(base.shape[0], 5, dtype=torch.float64),
        torch.empty(base.shape[0], 5, dtype=torch.float64),
    )
    assert native.block_products(table, base, cases, vectors, 5, plain)
    assert native.block_products(table, base, cases, vectors, 5, ordered, order=order)
    assert torch.equal(plain, ordered)  # each entry's products are computed alike, only at another time
    generator = torch.Generator().manual_seed(2)
    rows = torch.randint(0, 40, (300,), generator=generator)
    cases = torch.randint(0, 4, (300,), generator=generator)
    per_case = torch.randn(4, 9, generator=generator, dtype=torch.float64)
    results = []
    for order, group in ((None, 1), (native.group_order(rows, 40), 1), (native.group_order(rows, 40), 8)):
        storage = torch.zeros(40, 2, 9, dtype=torch.float64)
        assert native.add_rows(storage, rows, cases, per_case, None, (1.0, 0.5), order, group)
        results.append(storage)
    for other in results[1:]:
        torch.testing.assert_close(other, results[0], rtol=1e-12, atol=1e-12)  # the sums' order may differ


def test_an_order_that_is_not_a_permutation_is_refused():
    table, base, cases, vectors = _products_problem(torch.float32, 2)
    repeated = torch.zeros_like(base)  # entry 0 every time: the others would never be written
    with pytest.raises(IndexError, match="permutation"):
        native.block_products(table, base, cases, vectors, 2, torch.empty(base.shape[0], 2), order=repeated)
    storage = torch.zeros(3, 1, 2)
    with pytest.raises(IndexError, match="permutation"):
        native.add_rows(
            storage, torch.tensor([0, 1]), torch.tensor([0, 0]), torch.ones(1, 2), None, (1.0,), torch.tensor([1, 1])
        )
    assert not storage.any()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("levels", [7, 13])  # 7: rows a vector's width at a time; 13: one by one
def test_sample_levels_draws_what_the_torch_inverse_cdf_draws(dtype, levels):
    generator = torch.Generator().manual_seed(4)
    logits = 3 * torch.randn(2003, levels, generator=generator, dtype=dtype)  # 2003: a tail of rows after the lanes
    uniforms = torch.rand(2003, 1, generator=generator, dtype=dtype)
    cumulative = (logits - logits.amax(-1, keepdim=True)).exp().cumsum(-1)
    expected = (cumulative < uniforms * cumulative[:, -1:]).sum(-1).clamp_max(levels - 1)
    drawn = native.sample_levels(logits, uniforms)
    assert drawn.dtype == torch.int64 and drawn.shape == (2003,)
    assert (drawn != expected).sum() <= 2  # exp may round differently at a boundary, rarely
    assert native.sample_levels(logits, torch.zeros(2003, 1, dtype=dtype)).eq(0).all()  # u = 0: the first level
    assert native.sample_levels(logits, torch.full((2003, 1), 0.9999999, dtype=dtype)).max() <= levels - 1
    assert native.sample_levels(torch.zeros(3, 65, dtype=dtype), torch.zeros(3, 1, dtype=dtype)) is None  # > 64


def test_the_softmax_draw_has_the_softmax_probabilities():
    """Its exp is a polynomial: the frequencies of 200,000 draws match softmax(logits) to sampling error."""
    logits = torch.tensor([[-30.0, -1.0, 0.0, 2.5, -0.5]]).expand(200_000, 5).contiguous()
    uniforms = torch.rand(200_000, 1, generator=torch.Generator().manual_seed(5))
    frequencies = torch.bincount(native.sample_levels(logits, uniforms), minlength=5) / 200_000
    probabilities = torch.softmax(logits[0].double(), 0).float()
    torch.testing.assert_close(frequencies, probabilities, atol=4 * (0.25 / 200_000) ** 0.5, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("ordered", [False, True])
def test_sampled_blocks_draw_each_entrys_level_and_sum_the_drawn_rows_per_case(dtype, ordered):
    """The fused draw: the levels of the inverse CDF at the block products (offsets included), and per case the
    drawn rows' current values, each a combination of its stored coordinates."""
    generator = torch.Generator().manual_seed(6)
    n_rows, hidden, block, n_cases, n_entries = 50, 11, 5, 4, 203
    table = torch.randn(n_rows, 2 * hidden, generator=generator, dtype=dtype)  # rows of 2 coordinates
    vectors = torch.randn(n_cases, 2 * hidden, generator=generator, dtype=dtype)
    base = torch.randint(0, n_rows - block + 1, (n_entries,), generator=generator)
    cases = torch.randint(0, n_cases, (n_entries,), generator=generator)
    uniforms = torch.rand(n_entries, generator=generator, dtype=dtype)
    biases = torch.randn(n_rows, 2, generator=generator, dtype=dtype)
    order = native.group_order(base, n_rows) if ordered else None
    levels, sums = native.sampled_blocks(
        table, (0.5, -1.5), base, cases, vectors, block, uniforms, (biases, (1.0, 0.25)), order
    )
    products = torch.empty(n_entries, block, dtype=dtype)
    assert native.block_products(table, base, cases, vectors, block, products, (biases, (1.0, 0.25)))
    cumulative = (products - products.amax(-1, keepdim=True)).exp().cumsum(-1)
    expected = (cumulative < uniforms[:, None] * cumulative[:, -1:]).sum(-1).clamp_max(block - 1)
    assert (levels != expected).sum() <= 1
    current = 0.5 * table[:, :hidden] - 1.5 * table[:, hidden:]  # (rows, H): each row's current value
    expected_sums = torch.zeros(n_cases, hidden, dtype=dtype).index_add_(0, cases, current[base + levels])
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(sums, expected_sums, rtol=tolerance, atol=tolerance)


def _live(state: dict) -> tuple:
    """A PCG64 state as far as later draws can tell (the left-over half counts only while it is pending)."""
    return state["state"], state["has_uint32"], state["uinteger"] if state["has_uint32"] else None


@pytest.mark.parametrize(("dtype", "numpy_dtype"), [(torch.float32, np.float32), (torch.float64, np.float64)])
def test_pcg64_uniforms_are_the_numbers_numpy_draws_and_leave_its_state_where_numpy_would(dtype, numpy_dtype):
    ours, numpys = np.random.PCG64(123), np.random.PCG64(123)
    reference = np.random.Generator(numpys)
    threads = torch.get_num_threads()
    try:
        # odd counts leave half an output pending for the next float32 draw; 0 draws nothing
        for n_threads, count in [(1, 5), (2, 1), (2, 0), (3, 4), (2, 1001), (1, 7), (3, 1 << 16), (2, 3), (2, 2)]:
            torch.set_num_threads(n_threads)
            drawn = native.pcg64_uniforms(ours, count, dtype)
            assert drawn.dtype == dtype and drawn.shape == (count,)
            assert np.array_equal(drawn.numpy(), reference.random(count, dtype=numpy_dtype))
            assert _live(ours.state) == _live(numpys.state)
    finally:
        torch.set_num_threads(threads)


def test_the_uniform_stream_is_the_same_with_and_without_the_native_kernels(monkeypatch):
    from recsys_rbm.rbm.rng import BLOCK_SIZE, UniformStream

    shapes = [(100, 500), (3,), (BLOCK_SIZE + 5,), (BLOCK_SIZE - 1,), (7, 9)]  # across blocks and past one
    fast = UniformStream(9)
    fast_draws = [fast.uniform(shape).clone() for shape in shapes]
    monkeypatch.setenv(native.ENVIRONMENT_SWITCH, "0")
    plain = UniformStream(9)
    for shape, expected in zip(shapes, fast_draws, strict=True):
        assert torch.equal(plain.uniform(shape), expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("size", [(7,), (784, 500)])  # a bias on one thread; a weight matrix on several
@pytest.mark.parametrize("shrink", [0.0, -1e-4])
def test_momentum_step_is_the_trainers_four_operations_in_one_pass(dtype, size, shrink):
    generator = torch.Generator().manual_seed(5)
    parameter, velocity, gradient = (torch.randn(size, generator=generator, dtype=dtype) for _ in range(3))
    expected_parameter, expected_velocity = parameter.clone(), velocity.clone()
    expected_velocity.mul_(0.9).add_(gradient, alpha=0.05).add_(expected_parameter, alpha=shrink)
    expected_parameter.add_(expected_velocity)
    assert native.momentum_step(parameter, velocity, gradient, 0.9, 0.05, shrink)
    tolerance = 1e-6 if dtype == torch.float32 else 1e-14
    torch.testing.assert_close(velocity, expected_velocity, rtol=tolerance, atol=tolerance)
    torch.testing.assert_close(parameter, expected_parameter, rtol=tolerance, atol=tolerance)


def test_momentum_step_leaves_tensors_it_cannot_take_to_the_torch_path():
    parameter, velocity = torch.zeros(4, 3), torch.zeros(4, 3)
    assert not native.momentum_step(parameter, velocity, torch.ones(3, 4).T, 0.9, 0.05, 0.0)  # not contiguous
    assert not native.momentum_step(parameter, velocity, torch.ones(4, 3, dtype=torch.float64), 0.9, 0.05, 0.0)
    assert not native.momentum_step(parameter, velocity, torch.ones(12), 0.9, 0.05, 0.0)  # another shape
    assert not parameter.any() and not velocity.any()


def test_catch_up_refuses_rows_out_of_range_and_clocks_its_powers_do_not_reach():
    theta, velocity = torch.zeros(4, 3), torch.zeros(4, 3)
    powers = torch.eye(2).flatten()[:, None].repeat(1, 3).contiguous()  # M^s = I for s < 3
    with pytest.raises(IndexError, match="out of range"):
        native.catch_up(theta, velocity, torch.zeros(4, dtype=torch.long), torch.tensor([4]), 1, powers)
    with pytest.raises(IndexError, match="ahead of the step"):
        native.catch_up(theta, velocity, torch.full((4,), 2, dtype=torch.long), torch.tensor([0]), 1, powers)
    with pytest.raises(IndexError, match="further behind"):
        native.catch_up(theta, velocity, torch.zeros(4, dtype=torch.long), torch.tensor([0]), 3, powers)
    assert not native.catch_up(theta, velocity, torch.zeros(4, dtype=torch.int32), torch.tensor([0]), 1, powers)
