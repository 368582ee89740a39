"""Official cases judged wrong: each contradicts its process's spec text or is broken.

terracube follows the spec, so these cases fail on purpose. They are still run and counted in
"all cases"; the second figure in docs/conformance.md leaves them out. A case is identified by
its process and its position in the file (``process#index``); a fixed or renumbered case shows up
in the conformance test as soon as its outcome changes (``test_conformance.py``).
"""

from __future__ import annotations

REJECTED: dict[str, str] = {
    "apply#2": "expected values use blue=165 at [0][3] of xyb-enumerated-bands; the referenced asset has 255 there (its no-data value)",
    "array_element#3": "asks for label 'BO2' (letter O); the array has 'B01'..'B03' (zero), yet expects 5",
    "count#4": "the condition is a bare graph (no 'process_graph' wrapper) reading parameter 'element'; the spec names it 'x'",
    "count#5": "the condition is a bare graph (no 'process_graph' wrapper) reading parameter 'element'; the spec names it 'x'",
    "lte#15": "expects lte(inf, inf) = false, while gte(inf, inf) = true and IEEE 754 says inf <= inf",
    "product#10": "expects NaN for 1 * -inf * 3 * inf, which is -inf (the expected value was copied from the sum case)",
    "filter_bands#4": "same arguments as case 3, yet different expected bands (blue, green)",
    "mask#0": "expects the replacement where the mask is 0; the spec replaces where the mask is true or non-zero",
    "mask#2": "expects the replacement where the mask is 0 (and also at [2][2], where it is 1); the spec replaces where it is non-zero",
    "reduce_dimension#1": "uses from_argument to refer to the nodes 'red' and 'blue' (it must be from_node; from_argument "
    "named parameters before openEO 1.0)",
    "rename_labels#5": "'target' (required) is missing, the labels are given as 'source'",
    "rename_labels#7": "'target' (required) is missing, the labels are given as 'source'",
    "all#8": "expects all([null], ignore_nodata=false) = true; the spec's truth table and its own example say null",
    "any#8": "expects any([null], ignore_nodata=false) = false; the spec's truth table and its own example say null",
    "array_append#0": "expects [1] after appending 0 to an empty array",
    "array_apply#8": "calls the process 'mulitply' (misspelled); there is no such process",
    **{
        f"array_filter#{i}": "passes the callback as 'process'; array_filter's parameter is 'condition'"
        for i in range(7)
    },
    "array_find#6": "expects index 1 for the value 3 in [3, 4] (labels B03, B04); the value is at index 0",
    **{
        f"aggregate_temporal#{i}": "the intervals are in January 2020, the referenced asset xyt-more-timestamps has its "
        "labels in June 2020, so every interval is empty; the expected values assume data inside them"
        for i in (5, 6, 7, 8)
    },
    "aggregate_temporal#9": "'labels' is placed inside the reducer object instead of being an argument",
    "aggregate_temporal#10": "the reducer is mean, the expected values are the medians (the case lists median as required)",
    "aggregate_temporal_period#3": "expects the labels 2020-06-01-00 .. 2020-06-04-00 (four days) for hours of one day; "
    "the spec's labels are the complete hours YYYY-MM-DD-00 .. -04",
    "aggregate_temporal_period#4": "expects YYYY-MM-DD-00 labels for period 'day'; the spec's labels are YYYY-001 .. YYYY-365",
    "aggregate_temporal_period#8": "aggregates dimension 't2' but expects it renamed to 't'; the spec keeps the dimension's name",
    "aggregate_temporal_period#9": "aggregates dimension 't2' but expects it renamed to 't'; the spec keeps the dimension's name",
    "apply_dimension#1": "at x=404865, y=5757495 the band values are 192, 216 and the no-data value 255; the expected "
    "quantiles treat the no-data value as a value below 192 instead of ignoring it (quantiles' ignore_nodata default)",
    "apply_dimension#2": "applies over dimension 'bands' of xyt-more-timestamps, which has no such dimension",
    "mask_polygon#0": "inside=true replaces the pixels inside the polygon, which lies in Austria, far from the cube (Germany): "
    "nothing is inside, so nothing changes; the case expects everything replaced (inside and outside swapped with case 1)",
    "mask_polygon#1": "inside=false replaces every pixel outside the polygon, i.e. all of them (the polygon misses the cube); "
    "the case expects the cube unchanged (swapped with case 0)",
    "mask_polygon#6": "the expected asset xytb-s2-small-masked-inside leaves the row y=5757475 inside the polygon unmasked in band "
    "nir on 2020-06-13 only; every other band and date, and the masked-outside asset, count that row as inside",
    "rename_dimension#3": "renames x to lon but expects y renamed (order t, lon, x with y's labels)",
    "rename_dimension#4": "renames y to lat but expects x renamed (order t, y, lat with x's labels)",
    "array_modify#3": "omits 'length', whose declared default is 0 (insert only), yet expects an element removed "
    "(the spec's own example contradicts its parameter default)",
}


# Cases where terracube deliberately differs from what the case expects, for a documented reason.
# They count as failures in both figures: the case is not wrong, terracube chose otherwise.
DEVIATIONS: dict[str, str] = {
    "filter_bands#2": "an unknown band name is the BandFilterNotFound error (as on CDSE), not an empty band dimension",
}
