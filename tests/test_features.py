"""Note input features (MODEL_SPEC.md section 2): slot by slot, and against a plain loop."""
import numpy as np
import pytest

from biaxial_cu.features import note_inputs, note_inputs_at


def loop_features(state, t):
    """The spec text as a plain loop over notes: state (78, 2) at step t -> (78, 80) float64."""
    counts = [0] * 12
    for m in range(78):
        if state[m][0] == 1:
            counts[m % 12] += 1
    rows = []
    for n in range(78):
        pc = n % 12
        row = [float(n)]
        row += [1.0 if p == pc else 0.0 for p in range(12)]
        for i in range(-12, 13):
            m = n + i
            if 0 <= m < 78:
                row += [float(state[m][0]), float(state[m][1])]
            else:
                row += [0.0, 0.0]
        row += [float(counts[(pc + k) % 12]) for k in range(12)]
        row += [2.0 * b - 1.0 for b in (t % 2, t // 2 % 2, t // 4 % 2, t // 8 % 2)]
        row += [0.0]
        rows.append(row)
    return np.array(rows)


def random_roll(rng, T, density=0.15):
    play = rng.random((T, 78)) < density  # (T, 78)
    articulate = play & (rng.random((T, 78)) < 0.5)
    return np.stack([play, articulate], axis=-1).astype(np.uint8)  # (T, 78, 2)


def vicinity_pair(features_of_note, offset):
    """(play, articulate) slots for offset -12..12 in one note's 80 features."""
    slot = 13 + 2 * (offset + 12)
    return features_of_note[slot], features_of_note[slot + 1]


def test_shape_and_dtype():
    S = np.zeros((5, 78, 2), np.uint8)
    X = note_inputs(S)
    assert X.shape == (5, 78, 80) and X.dtype == np.float32
    assert note_inputs(S, dtype=np.float64).dtype == np.float64
    assert note_inputs_at(S, np.arange(5)).shape == (5, 78, 80)


def test_position_and_pitch_class():
    X = note_inputs(np.zeros((1, 78, 2), np.uint8))[0]  # (78, 80)
    assert np.array_equal(X[:, 0], np.arange(78))
    for n in (0, 1, 11, 12, 23, 40, 77):
        one_hot = np.zeros(12)
        one_hot[n % 12] = 1
        assert np.array_equal(X[n, 1:13], one_hot), n
    assert np.all(X[:, 79] == 0)


def test_vicinity_single_note_in_the_middle():
    state = np.zeros((1, 78, 2), np.uint8)
    state[0, 40] = (1, 1)  # note 40 struck
    state[0, 45] = (1, 0)  # note 45 held
    X = note_inputs(state)[0]  # (78, 80)
    # note n sees note 40 at offset 40 - n, note 45 at offset 45 - n
    for n in range(78):
        for offset in range(-12, 13):
            m = n + offset
            expected = (1, 1) if m == 40 else (1, 0) if m == 45 else (0, 0)
            assert vicinity_pair(X[n], offset) == expected, (n, offset)
    assert vicinity_pair(X[40], 0) == (1, 1)
    assert vicinity_pair(X[28], 12) == (1, 1)
    assert vicinity_pair(X[52], -12) == (1, 1)
    assert vicinity_pair(X[33], 12) == (1, 0)  # 33 + 12 = 45
    assert vicinity_pair(X[27], 12) == (0, 0)  # 27 + 12 = 39


@pytest.mark.parametrize("n", list(range(0, 12)) + list(range(66, 78)))
def test_vicinity_cut_off_at_the_edges(n):
    """All notes play and are struck: every offset reaching below note 0 or above note 77 reads
    zeros (no wrap)."""
    state = np.ones((1, 78, 2), np.uint8)
    X = note_inputs(state)[0]
    for offset in range(-12, 13):
        inside = 0 <= n + offset < 78
        assert vicinity_pair(X[n], offset) == ((1, 1) if inside else (0, 0)), offset


def test_vicinity_does_not_wrap_around():
    """The original read note n+i+78 for n+i < 0; ours reads zeros there."""
    state = np.zeros((1, 78, 2), np.uint8)
    state[0, 77] = (1, 1)  # the top note; the original's note 0 saw it at offset -1
    state[0, 0] = (1, 0)  # the bottom note; nothing above 77 should see it
    X = note_inputs(state)[0]
    assert vicinity_pair(X[0], -1) == (0, 0)
    assert vicinity_pair(X[0], 0) == (1, 0)
    assert vicinity_pair(X[77], 0) == (1, 1)
    assert X[0:11, 13:63].sum() == 11  # notes 0..10 see only note 0 (held, so play only)
    assert X[66, 13:63].sum() == 2  # note 66 sees note 77 at offset +11, struck
    assert vicinity_pair(X[66], 11) == (1, 1)


def test_context_counts_rotated():
    state = np.zeros((1, 78, 2), np.uint8)
    # pitch classes: n % 12. Play C (n=0, 12, 24) three times, D (n=2) once, B (n=71) once,
    # and a struck-but-not-playing entry at E (n=4) that must not count.
    for n in (0, 12, 24):
        state[0, n] = (1, 0)
    state[0, 2] = (1, 1)
    state[0, 71] = (1, 1)
    state[0, 4] = (0, 1)
    counts = np.zeros(12)
    counts[0], counts[2], counts[11] = 3, 1, 1
    X = note_inputs(state)[0]
    for n in range(78):
        pc = n % 12
        assert np.array_equal(X[n, 63:75], np.roll(counts, -pc)), n
    assert np.array_equal(X[0, 63:75], counts)  # pc 0: unrotated
    assert X[2, 63] == 1 and X[2, 73] == 3  # pc 2: k=0 reads D, k=10 reads C
    assert X[11, 63] == 1 and X[11, 64] == 3  # pc 11: k=0 reads B, k=1 reads C


@pytest.mark.parametrize("t", [0, 1, 2, 3, 5, 8, 15, 16, 17, 100, 12345])
def test_beat_bits(t):
    X = note_inputs_at(np.zeros((1, 78, 2), np.uint8), np.array([t]))[0]
    expected = [2 * ((t >> k) & 1) - 1 for k in range(4)]
    assert np.all(X[:, 75:79] == expected)


def test_beat_bits_follow_start_step():
    S = np.zeros((20, 78, 2), np.uint8)
    for start in (0, 1, 7, 16, 1000):
        X = note_inputs(S, start_step=start)
        for t in range(20):
            step = start + t
            expected = [2 * ((step >> k) & 1) - 1 for k in range(4)]
            assert np.all(X[t, :, 75:79] == expected), (start, t)
    # the beat pattern repeats every 16 steps
    X = note_inputs(np.zeros((40, 78, 2), np.uint8))
    assert np.array_equal(X[:24, :, 75:79], X[16:, :, 75:79])
    assert np.all(X[0, :, 75:79] == -1) and np.all(X[15, :, 75:79] == 1)


def test_matches_the_loop_on_random_rolls():
    rng = np.random.default_rng(7)
    for density in (0.05, 0.3, 0.9):
        S = random_roll(rng, 20, density)
        start = int(rng.integers(0, 50))
        X = note_inputs(S, start_step=start, dtype=np.float64)
        for t in range(S.shape[0]):
            assert np.array_equal(X[t], loop_features(S[t], start + t)), (density, t)


def test_note_inputs_at_matches_note_inputs_per_state():
    rng = np.random.default_rng(3)
    states = random_roll(rng, 6)  # (6, 78, 2)
    steps = np.array([0, 5, 31, 2, 2, 1024])
    X = note_inputs_at(states, steps)
    for k in range(6):
        assert np.array_equal(X[k], note_inputs(states[k:k + 1], start_step=int(steps[k]))[0])
        assert np.array_equal(X[k], loop_features(states[k], int(steps[k])).astype(np.float32))
    # one int step for every state
    assert np.array_equal(note_inputs_at(states, 9), note_inputs_at(states, np.full(6, 9)))


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, bool, np.float32, np.float64])
def test_accepts_any_0_1_dtype(dtype):
    S = random_roll(np.random.default_rng(1), 4)
    expected = note_inputs(S)
    assert np.array_equal(note_inputs(S.astype(dtype)), expected)


def test_articulate_without_play_is_passed_through_but_not_counted():
    state = np.zeros((1, 78, 2), np.uint8)
    state[0, 30] = (0, 1)
    X = note_inputs(state)[0]
    assert vicinity_pair(X[30], 0) == (0, 1)
    assert X[:, 63:75].sum() == 0


def test_empty_roll():
    assert note_inputs(np.zeros((0, 78, 2), np.uint8)).shape == (0, 78, 80)


@pytest.mark.parametrize("bad", [
    np.zeros((78, 2)), np.zeros((3, 77, 2)), np.zeros((3, 78, 3)), np.zeros((3, 78)),
    np.full((2, 78, 2), 2), np.full((2, 78, 2), 0.5), np.full((2, 78, 2), -1),
    np.array([["a"] * 2] * 78)[None],
])
def test_bad_states_raise_value_error(bad):
    with pytest.raises(ValueError):
        note_inputs(bad)


@pytest.mark.parametrize("start", [-1, 1.5, "3", True])
def test_bad_start_step(start):
    with pytest.raises(ValueError, match="start_step"):
        note_inputs(np.zeros((2, 78, 2), np.uint8), start_step=start)


@pytest.mark.parametrize("steps", [np.array([0, 1, 2]), np.array([0.0, 1.0]), np.array([0, -1]),
                                   np.zeros((2, 1), int)])
def test_bad_steps(steps):
    with pytest.raises(ValueError, match="steps"):
        note_inputs_at(np.zeros((2, 78, 2), np.uint8), steps)


def test_bad_dtype():
    with pytest.raises(ValueError, match="dtype"):
        note_inputs(np.zeros((2, 78, 2), np.uint8), dtype=np.int32)


def test_bar_positions_replace_the_step_index():
    """positions (meters "all"): row t's beat inputs are those of step index positions[t]; the
    rest of the features does not depend on them; the original's indices give note_inputs(S)."""
    rng = np.random.default_rng(5)
    S = (rng.random((20, 78, 2)) < 0.2).astype(np.uint8)
    positions = (3 + np.arange(20)) % 6  # 3/8 bars of 6 steps from bar position 3
    X = note_inputs(S, positions=positions)
    for t in range(20):
        np.testing.assert_array_equal(X[t], note_inputs(S[t:t + 1], start_step=int(positions[t]))[0])
    np.testing.assert_array_equal(note_inputs(S, positions=np.arange(20)), note_inputs(S))
    with pytest.raises(ValueError, match="start_step or positions"):
        note_inputs(S, 2, positions=positions)
    with pytest.raises(ValueError):
        note_inputs(S, positions=positions[:5])
