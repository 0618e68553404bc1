"""Hypothesis strategies shared by the tests."""

from __future__ import annotations

import datetime as dt
import pathlib

import numpy as np
import pandas as pd
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)

plain_json = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)

hashable_leaves = (
    scalars
    | st.binary(max_size=20)
    | st.complex_numbers(allow_nan=False)
    | st.datetimes()
    | st.dates()
    | st.times()
    | st.timedeltas(min_value=dt.timedelta(days=-1000), max_value=dt.timedelta(days=1000))
    | st.builds(pathlib.Path, st.text(alphabet="abc/._", max_size=10))
)

tagged_values = st.recursive(
    hashable_leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.frozensets(hashable_leaves, max_size=4)
        | st.dictionaries(hashable_leaves, children, max_size=4)
    ),
    max_leaves=15,
)

arrays = hnp.arrays(
    dtype=hnp.scalar_dtypes() | hnp.byte_string_dtypes() | hnp.unicode_string_dtypes(),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
)

numpy_scalars = hnp.from_dtype(np.dtype("f8")).map(np.float64) | st.integers(
    -(2**31), 2**31 - 1
).map(np.int32)


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(0, 5))
    columns = draw(st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=3, unique=True))
    data = {}
    for name in columns:
        kind = draw(st.sampled_from(["int", "float", "str", "bool"]))
        if kind == "int":
            data[name] = draw(st.lists(st.integers(-(2**40), 2**40), min_size=n, max_size=n))
        elif kind == "float":
            data[name] = draw(st.lists(st.floats(allow_nan=True), min_size=n, max_size=n))
        elif kind == "str":
            data[name] = draw(st.lists(st.text(max_size=5), min_size=n, max_size=n))
        else:
            data[name] = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    return pd.DataFrame(data)
