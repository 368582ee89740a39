"""The table of every process terracube implements: openEO process id -> function.

This is the only place a process is made available. ``/processes`` lists exactly these, each with
its official spec (``registry.load_spec``). Functions take the spec's parameters as keyword
arguments (callbacks arrive as ``terracube.graph.Callback`` callables); a function that needs the
catalog or must hand over a result also takes ``env`` (``ProcessEnv``).
"""

from __future__ import annotations

from terracube.processes import load_stac as load_stac_module
from terracube.processes import arrays, comparison, cubes, cubes_combine, cubes_filter, load, logic, math, save

IMPLEMENTATIONS = {
    "load_collection": load.load_collection,
    "load_stac": load_stac_module.load_stac,
    "save_result": save.save_result,
    # cubes
    "filter_bbox": cubes_filter.filter_bbox,
    "filter_temporal": cubes_filter.filter_temporal,
    "filter_bands": cubes_filter.filter_bands,
    "reduce_dimension": cubes.reduce_dimension,
    "apply": cubes.apply,
    "ndvi": cubes.ndvi,
    "mask": cubes_combine.mask,
    "merge_cubes": cubes_combine.merge_cubes,
    "rename_labels": cubes.rename_labels,
    # arrays
    "array_element": arrays.array_element,
    "array_create": arrays.array_create,
    "count": arrays.count,
    "first": arrays.first,
    "last": arrays.last,
    # math: statistics over arrays (reducers)
    "mean": math.mean,
    "median": math.median,
    "min": math.min_,
    "max": math.max_,
    "sum": math.sum_,
    "product": math.product,
    "sd": math.sd,
    "variance": math.variance,
    # math: element-wise
    "add": math.add,
    "subtract": math.subtract,
    "multiply": math.multiply,
    "divide": math.divide,
    "absolute": math.absolute,
    "sgn": math.sgn,
    "sqrt": math.sqrt,
    "power": math.power,
    "exp": math.exp,
    "ln": math.ln,
    "log": math.log,
    "floor": math.floor,
    "ceil": math.ceil,
    "int": math.int_,
    "round": math.round_,
    "mod": math.mod,
    "normalized_difference": math.normalized_difference,
    "linear_scale_range": math.linear_scale_range,
    "clip": math.clip,
    "constant": math.constant,
    "pi": math.pi,
    "e": math.e,
    # comparison
    "eq": comparison.eq,
    "neq": comparison.neq,
    "gt": comparison.gt,
    "gte": comparison.gte,
    "lt": comparison.lt,
    "lte": comparison.lte,
    "between": comparison.between,
    "is_nan": comparison.is_nan,
    "is_nodata": comparison.is_nodata,
    "is_valid": comparison.is_valid,
    "is_infinite": comparison.is_infinite,
    # logic
    "and": logic.and_,
    "or": logic.or_,
    "xor": logic.xor,
    "not": logic.not_,
    "if": logic.if_,
}
