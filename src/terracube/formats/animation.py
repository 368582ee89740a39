"""save_result as an animation: a GIF or MP4 time-lapse of a raster cube, one frame per date.

Each frame is drawn exactly as a PNG of that date would be (``formats/picture.py``: one band
through a colormap, or three as red, green and blue; the same ``colormap``, ``range`` and
``gamma`` options), in date order, with the date written in its lower left corner unless
``date_label`` is false. One range holds for every frame, so a colour means the same value
throughout: the one given, else the minimum and maximum of the whole cube (one more pass over the
data; give a ``range`` to spare it).

GIF keeps no-data transparent, as PNG does; a frame of up to 255 colours keeps them exactly. A
colormap frame has at most 256 (and the label two more): its rarest few take the nearest colour
kept, one colormap step away. A true colour frame is reduced to 255 colours by Pillow's median
cut, without dithering. Frames identical to the one before are merged into one frame of their
summed duration (Pillow's writer does so; a date label keeps dates apart). MP4 is H.264 (yuv420p:
what browsers and phones play) written by the ffmpeg binary of the ``imageio-ffmpeg`` wheel,
no-data black as in JPEG; a frame of odd width or height gets one black row or column, as H.264
needs even sizes.

Frames are computed a batch of dates at a time, so memory follows the batch, not the cube. How
many frames and how many pixels a frame may have are the server's limits (``animation_max_frames``,
``animation_max_frame_pixels``), checked from the cube's shape when ``save_result`` is evaluated,
before a pixel is read (``check_animation``).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from terracube.cube import DIM_BANDS, DIM_T, DIM_X, DIM_Y, is_raster_cube
from terracube.errors import FormatUnsuitable
from terracube.settings import Settings
from terracube.formats.picture import PARAMETERS as PICTURE_PARAMETERS
from terracube.formats.picture import Picture, _invalid, _number, _shown, check_drawable, draw, picture_options

DEFAULT_FPS = 2.0
MAX_FPS = 30.0
MIN_FPS = 0.1
# A GIF frame with more colours than this is reduced by median cut; below, by merging its rarest colours.
MAX_KEPT_COLOURS = 1024
# Values computed at once (float32): dates are computed in batches of this size (128 MiB).
BATCH_VALUES = 2**25

PARAMETERS: dict[str, dict] = {
    **{name: spec for name, spec in PICTURE_PARAMETERS.items() if name != "filename_prefix"},
    "fps": {
        "type": "number", "minimum": MIN_FPS, "maximum": MAX_FPS, "default": DEFAULT_FPS,
        "description": "Frames (dates) per second: 2 shows each date for half a second, 0.5 for two seconds.",
    },
    "date_label": {
        "type": "boolean", "default": True,
        "description": "Write each frame's date (YYYY-MM-DD, UTC) in its lower left corner.",
    },
    "filename_prefix": PICTURE_PARAMETERS["filename_prefix"],
}


@dataclasses.dataclass(frozen=True)
class Animation:
    picture: Picture
    fps: float = DEFAULT_FPS
    date_label: bool = True


def animation_options(options: Mapping[str, Any] | None, video_format: str) -> Animation:
    """``save_result``'s options for GIF (``video_format`` "gif") or MP4 ("mp4"), checked; a bad one is the user's 400."""
    options = dict(options or {})
    for name in options:
        if name not in PARAMETERS:
            raise _invalid(name, f"not an option of {video_format.upper()}; its options are {', '.join(PARAMETERS)}")
    fps = options.pop("fps", None)
    label = options.pop("date_label", None)
    animation: dict[str, Any] = {"picture": picture_options(options, "png")}
    if fps is not None:
        if not (_number(fps) and MIN_FPS <= fps <= MAX_FPS):
            raise _invalid("fps", f"{_shown(fps)} is not a number of frames per second from {MIN_FPS:g} to {MAX_FPS:g}")
        animation["fps"] = float(fps)
    if label is not None:
        if not isinstance(label, bool):
            raise _invalid("date_label", f"{_shown(label)} is not true or false")
        animation["date_label"] = label
    return Animation(**animation)


def _frames_and_pixels(data: Any, name: str) -> tuple[int, int]:
    """(frames, pixels per frame) of a cube an animation can draw; FormatUnsuitable for any other value."""
    if not is_raster_cube(data):
        raise FormatUnsuitable(f"{name} draws a raster data cube with x and y dimensions, one frame per date; use JSON for other values.")
    check_drawable(data, name, (DIM_T, DIM_BANDS, DIM_Y, DIM_X))
    frames = data.sizes.get(DIM_T, 1)
    if frames == 0:
        raise FormatUnsuitable(f"{name} needs at least one date, but the data cube's temporal dimension '{DIM_T}' is empty.")
    return frames, data.sizes[DIM_Y] * data.sizes[DIM_X]


def check_animation(data: Any, options: Mapping[str, Any], settings: Settings | None, video_format: str) -> None:
    """Refuse, from its shape alone, a cube with more frames or bigger frames than the server allows."""
    name = video_format.upper()
    frames, pixels = _frames_and_pixels(data, name)
    # An evaluation without settings (no server) is held to the default limits.
    defaults = Settings.model_fields
    max_frames = settings.animation_max_frames if settings else defaults["animation_max_frames"].default
    max_pixels = settings.animation_max_frame_pixels if settings else defaults["animation_max_frame_pixels"].default
    if frames > max_frames:
        raise FormatUnsuitable(
            f"{name} is limited to {max_frames} frames on this server, but the data cube has {frames} dates. Choose fewer "
            f"with filter_temporal (a shorter period), load_collection's properties (less cloud) or aggregate_temporal_period."
        )
    if pixels > max_pixels:
        side = math.isqrt(max_pixels)
        raise FormatUnsuitable(
            f"{name} frames are limited to {max_pixels:,} pixels on this server (about {side} × {side}), but the data cube's are "
            f"{data.sizes[DIM_X]} × {data.sizes[DIM_Y]} = {pixels:,}. Choose a smaller area, or a coarser resolution with resample_spatial."
        )


def date_text(value: Any) -> str:
    """A time label as the frame shows it: the date, and the time (UTC) where it is not midnight."""
    if isinstance(value, np.datetime64):
        if value == value.astype("datetime64[D]"):
            return str(np.datetime_as_string(value, unit="D"))
        return str(np.datetime_as_string(value, unit="m")).replace("T", " ") + " UTC"
    return str(value)[:40]


def _in_date_order(data: Any) -> Any:
    if DIM_T not in data.dims:
        return data.expand_dims({DIM_T: [None]})
    labels = data[DIM_T].values
    if len(labels) > 1 and np.issubdtype(labels.dtype, np.datetime64) and not (labels[1:] >= labels[:-1]).all():
        return data.sortby(DIM_T)
    return data


def _overall_ranges(data: Any, compute: dict) -> tuple[tuple[float, float], ...]:
    """Each band's minimum and maximum over every date (one computation): one colour scale for the whole time-lapse."""
    import dask

    cube = data if DIM_BANDS in data.dims else data.expand_dims(DIM_BANDS)
    reduce = [dim for dim in cube.dims if dim != DIM_BANDS]
    low, high = dask.compute(cube.min(dim=reduce, skipna=True), cube.max(dim=reduce, skipna=True), **compute)
    ranges = []
    for lo, hi in zip(np.asarray(low.values, dtype=float), np.asarray(high.values, dtype=float)):
        if not (math.isfinite(lo) and math.isfinite(hi)):
            lo, hi = 0.0, 1.0
        ranges.append((lo, hi if hi > lo else lo + 1.0))
    return tuple(ranges)


def frames(data: Any, animation: Animation, video_format: str, compute: dict | None = None) -> Iterator[np.ndarray]:
    """The animation's frames, (height, width, 4) uint8 RGBA, one per date in date order, computed as they are asked for.

    Dates are computed a batch at a time (as many as fit in ``BATCH_VALUES``), not one by one: a
    graph that works along time (``apply_dimension`` over ``t``) is then computed once a batch
    rather than once a date, and memory still follows the batch, not the cube.
    """
    compute = compute or {}
    _frames_and_pixels(data, video_format.upper())
    cube = _in_date_order(data)
    cube = cube.transpose(DIM_T, DIM_BANDS, DIM_Y, DIM_X) if DIM_BANDS in cube.dims else \
        cube.transpose(DIM_T, DIM_Y, DIM_X).expand_dims(DIM_BANDS, axis=1)
    ys = cube[DIM_Y].values
    if len(ys) > 1 and ys[0] < ys[-1]:  # rows south to north: turned north up, as a picture is looked at
        cube = cube.isel({DIM_Y: slice(None, None, -1)})
    picture = animation.picture
    if picture.breaks is None and picture.ranges is None:
        picture = dataclasses.replace(picture, ranges=_overall_ranges(cube, compute))
    labels = cube[DIM_T].values
    batch = max(1, BATCH_VALUES // max(1, cube[0].size))
    for start in range(0, len(labels), batch):
        block = np.asarray(cube.isel({DIM_T: slice(start, start + batch)}).compute(**compute).values, dtype=np.float32)
        for values, label in zip(block, labels[start:start + batch]):
            rgba = draw(values, picture)
            if animation.date_label and label is not None:
                _write_label(rgba, date_text(label))
            yield rgba


def _write_label(rgba: np.ndarray, text: str) -> None:
    """The date in white on a dark box in the lower left corner, in place; nothing where the frame is too small for it.

    Drawn without anti-aliasing, so it adds two colours to a frame, not a ramp of greys (a GIF frame has 255).
    """
    from PIL import Image, ImageDraw, ImageFont

    height, width = rgba.shape[:2]
    size = max(10, min(40, round(min(height, width) / 16)))
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = font.getbbox(text)
    pad = max(2, size // 4)
    box_w, box_h = right - left + 2 * pad, bottom - top + 2 * pad
    if box_w + pad > width or box_h + pad > height:
        return
    image = Image.fromarray(rgba, "RGBA")
    canvas = ImageDraw.Draw(image)
    canvas.fontmode = "1"
    x0, y0 = pad, height - pad - box_h
    canvas.rectangle((x0, y0, x0 + box_w - 1, y0 + box_h - 1), fill=(32, 32, 32, 255))
    canvas.text((x0 + pad - left, y0 + pad - top), text, font=font, fill=(255, 255, 255, 255))
    rgba[...] = np.asarray(image)


def _paletted(rgba: np.ndarray):
    """A frame as a paletted image (GIF's 256 colours), index 0 transparent (no-data).

    Up to 255 colours are kept exactly. A colormap frame has at most 256 and the label two more: the
    255 most frequent stay exact and the few others take the nearest of them (one colormap step
    away). True colour (thousands) goes through Pillow's median cut, without dithering, which would
    add noise that is not in the data.
    """
    from PIL import Image

    height, width = rgba.shape[:2]
    opaque = rgba[..., 3] > 0
    packed = (rgba[..., 0].astype(np.uint32) << 16) | (rgba[..., 1].astype(np.uint32) << 8) | rgba[..., 2]
    colours, inverse, counts = np.unique(packed[opaque], return_inverse=True, return_counts=True)
    indices = np.zeros((height, width), dtype=np.uint8)
    palette = np.zeros((256, 3), dtype=np.uint8)
    if len(colours) <= MAX_KEPT_COLOURS:
        rgb = np.stack([(colours >> 16) & 255, (colours >> 8) & 255, colours & 255], axis=-1).astype(np.int32)
        kept = np.sort(np.argsort(-counts, kind="stable")[:255])
        # Each colour's index among the kept ones: itself where kept, else the nearest kept colour.
        nearest = ((rgb[:, None, :] - rgb[None, kept, :]) ** 2).sum(axis=-1).argmin(axis=1)
        indices[opaque] = nearest[inverse].astype(np.uint8) + 1
        palette[1:len(kept) + 1] = rgb[kept]
    else:
        reduced = Image.fromarray(np.ascontiguousarray(rgba[..., :3]), "RGB").quantize(255, method=Image.Quantize.MEDIANCUT,
                                                                                         dither=Image.Dither.NONE)
        indices[opaque] = np.asarray(reduced)[opaque] + 1
        used = np.frombuffer(bytes(reduced.getpalette()[:255 * 3]), dtype=np.uint8)
        palette[1:1 + len(used) // 3] = used.reshape(-1, 3)
    image = Image.fromarray(indices, "P")
    image.putpalette(palette.tobytes())
    image.info["transparency"] = 0
    return image


def write_gif(data: Any, directory: Path, options: dict, compute: dict | None = None) -> list[Path]:
    animation = animation_options(options, "gif")
    pictures = [_paletted(rgba) for rgba in frames(data, animation, "gif", compute)]
    path = directory / f"{animation.picture.prefix}.gif"
    # GIF delays are hundredths of a second; Pillow takes milliseconds. Disposal 2: each frame is drawn
    # on a cleared canvas, so one date's no-data shows nothing rather than the date before.
    pictures[0].save(path, "GIF", save_all=True, append_images=pictures[1:], duration=round(1000 / animation.fps / 10) * 10,
                     loop=0, disposal=2, transparency=0, optimize=False)
    return [path]


def write_mp4(data: Any, directory: Path, options: dict, compute: dict | None = None) -> list[Path]:
    import imageio_ffmpeg

    animation = animation_options(options, "mp4")
    path = directory / f"{animation.picture.prefix}.mp4"
    writer = None
    try:
        for rgba in frames(data, animation, "mp4", compute):
            rgb = _even(np.where(rgba[..., 3:] > 0, rgba[..., :3], 0).astype(np.uint8))
            if writer is None:
                # macro_block_size 2: frames are made even above, so ffmpeg scales nothing; quality 8 is
                # libx264's CRF 10, near lossless for the flat colours of a colormap.
                writer = imageio_ffmpeg.write_frames(str(path), (rgb.shape[1], rgb.shape[0]), fps=animation.fps, codec="libx264",
                                                     pix_fmt_out="yuv420p", quality=8, macro_block_size=2,
                                                     output_params=["-movflags", "+faststart"], ffmpeg_log_level="error")
                writer.send(None)
            writer.send(np.ascontiguousarray(rgb))
    except BaseException:
        if writer is not None:
            writer.close()
        path.unlink(missing_ok=True)
        raise
    writer.close()
    return [path]


def _even(rgb: np.ndarray) -> np.ndarray:
    height, width = rgb.shape[:2]
    if height % 2 == 0 and width % 2 == 0:
        return rgb
    return np.pad(rgb, ((0, height % 2), (0, width % 2), (0, 0)))
