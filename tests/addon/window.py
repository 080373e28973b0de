"""Strict stand-ins for what a Blender window gives an add-on, built from Blender's own RNA at run time.

Runs inside Blender (the bpy module). Events, timers, the window manager, windows, areas, layouts, the context and
running operators are checked against `bpy.types.<Struct>.bl_rna`: an attribute or function Blender does not
define raises, and so do a parameter it does not take, a value of the wrong type, or an enum item or icon it does
not know. What the stand-ins saw (timers, handlers, reports, drawn labels) is kept for the test to check.
"""

from __future__ import annotations

import time
import types

import bpy

OPERATOR_RESULTS = {'RUNNING_MODAL', 'CANCELLED', 'FINISHED', 'PASS_THROUGH', 'INTERFACE'}


class StandInError(AssertionError):
    """The add-on used something a real Blender window does not have (or used it wrongly)."""


def _check_value(where: str, prop, value) -> None:
    """`value` as Blender would accept it for the RNA property or parameter `prop`."""
    kind = prop.type
    if kind == 'STRING':
        ok = isinstance(value, str)
    elif kind == 'BOOLEAN':
        ok = isinstance(value, bool) or (getattr(prop, "is_array", False) and isinstance(value, (list, tuple)))
    elif kind == 'INT':
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == 'FLOAT':
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif kind == 'ENUM':
        known = set(prop.enum_items.keys())
        if prop.is_enum_flag:
            ok = isinstance(value, (set, frozenset)) and value <= known
        else:
            ok = isinstance(value, str) and value in known
        if not ok:
            raise StandInError(f"{where}={value!r}: Blender knows no such item (expected one of "
                               f"{sorted(known)[:12]}{'...' if len(known) > 12 else ''})")
        return
    elif kind == 'POINTER':
        ok = value is not None or not prop.is_required
    else:
        ok = True
    if not ok:
        raise StandInError(f"{where}={value!r}: Blender expects {kind.lower()}")


def check_call(struct: str, function: str, args: tuple, kwargs: dict) -> dict:
    """The arguments of a call to `bpy.types.<struct>.<function>` by Blender's definition; returns them by name."""
    rna = getattr(bpy.types, struct).bl_rna
    func = rna.functions.get(function)
    if func is None:
        raise StandInError(f"bpy.types.{struct} has no function {function!r}")
    params = [p for p in func.parameters if not p.is_output]
    if len(args) > len(params):
        raise StandInError(f"{struct}.{function} takes {len(params)} arguments, {len(args)} given")
    named = {p.identifier: value for p, value in zip(params, args)}
    for key, value in kwargs.items():
        if key in named:
            raise StandInError(f"{struct}.{function}: {key!r} given twice")
        named[key] = value
    by_name = {p.identifier: p for p in params}
    for key, value in named.items():
        if key not in by_name:
            raise StandInError(f"{struct}.{function} has no parameter {key!r} (it has {sorted(by_name)})")
        _check_value(f"{struct}.{function}({key})", by_name[key], value)
    missing = [p.identifier for p in params if p.is_required and p.identifier not in named]
    if missing:
        raise StandInError(f"{struct}.{function}: required {missing} not given")
    return named


def _output_type(struct: str, function: str) -> str | None:
    func = getattr(bpy.types, struct).bl_rna.functions[function]
    out = [p for p in func.parameters if p.is_output]
    return out[0].fixed_type.identifier if out and out[0].type == 'POINTER' else None


class _Strict:
    """Attributes by the RNA of `bpy.types.<_struct>`: reads of undefined names and writes of read-only or
    undefined properties raise; `values` answers the properties that are set (others read as Blender's default)."""

    _struct = ""

    def __init__(self, **values):
        object.__setattr__(self, "_values", {})
        for key, value in values.items():
            self._store(key, value, check_readonly=False)

    @classmethod
    def _rna(cls):
        return getattr(bpy.types, cls._struct).bl_rna

    def _store(self, key, value, check_readonly=True):
        prop = self._rna().properties.get(key)
        if prop is None or key == "rna_type":
            raise StandInError(f"bpy.types.{self._struct} has no property {key!r}")
        if check_readonly and prop.is_readonly:
            raise StandInError(f"bpy.types.{self._struct}.{key} is read-only")
        if prop.type != 'POINTER' and prop.type != 'COLLECTION':
            _check_value(f"{self._struct}.{key}", prop, value)
        self._values[key] = value

    def __setattr__(self, key, value):
        self._store(key, value)

    def __getattr__(self, key):
        if key.startswith("__"):
            raise AttributeError(key)
        values = object.__getattribute__(self, "_values")
        if key in values:
            return values[key]
        rna = self._rna()
        if key in rna.functions:
            raise StandInError(f"bpy.types.{self._struct}.{key}() is not stood in here; add it to the harness")
        prop = rna.properties.get(key)
        if prop is None or key == "rna_type":
            raise AttributeError(f"bpy.types.{self._struct} has no attribute {key!r}")
        if prop.type in ('POINTER',):
            return None
        if prop.type == 'COLLECTION':
            return []
        if getattr(prop, "is_array", False) and prop.array_length:
            return tuple(prop.default_array)
        return prop.default


class Event(_Strict):
    """bpy.types.Event: only its own properties, `type` and `value` from its enums."""

    _struct = "Event"

    def __init__(self, type: str, value: str = 'NOTHING', **values):
        super().__init__(type=type, value=value, **values)


class Timer(_Strict):
    _struct = "Timer"


class Area(_Strict):
    _struct = "Area"

    def __init__(self, type: str = 'VIEW_3D'):
        super().__init__(type=type)
        object.__setattr__(self, "redraws", 0)

    def tag_redraw(self, *args, **kwargs):
        check_call("Area", "tag_redraw", args, kwargs)
        object.__setattr__(self, "redraws", self.redraws + 1)


class Screen(_Strict):
    _struct = "Screen"


class Window(_Strict):
    _struct = "Window"


class WindowManager(_Strict):
    """bpy.types.WindowManager with the modal-timer functions; every timer added and removed is counted."""

    _struct = "WindowManager"

    def __init__(self, windows):
        super().__init__()
        for key, value in (("windows", list(windows)), ("timers", []), ("removed", []), ("handlers", [])):
            object.__setattr__(self, key, value)

    def event_timer_add(self, *args, **kwargs):
        named = check_call("WindowManager", "event_timer_add", args, kwargs)
        if named.get("window") is not None and named["window"] not in self.windows:
            raise StandInError("event_timer_add(window=...): not a window of this window manager")
        timer = Timer(time_step=float(named["time_step"]))
        self.timers.append(timer)
        return timer

    def event_timer_remove(self, *args, **kwargs):
        named = check_call("WindowManager", "event_timer_remove", args, kwargs)
        timer = named["timer"]
        if timer not in self.timers:
            raise StandInError("event_timer_remove: this timer was never added here")
        if timer in self.removed:
            raise StandInError("event_timer_remove: this timer was already removed (Blender would free it twice)")
        self.removed.append(timer)

    def modal_handler_add(self, *args, **kwargs):
        named = check_call("WindowManager", "modal_handler_add", args, kwargs)
        self.handlers.append(named["operator"])
        return True

    @property
    def live_timers(self) -> int:
        return len([t for t in self.timers if t not in self.removed])


def window_manager() -> WindowManager:
    """One window whose screen has a 3D View (and an Outliner, which must not be redrawn)."""
    screen = Screen()
    areas = [Area('VIEW_3D'), Area('OUTLINER')]
    object.__setattr__(screen, "_values", {"areas": areas})
    window = Window()
    object.__setattr__(window, "_values", {"screen": screen})
    return WindowManager([window])


class Context:
    """bpy.types.Context: its RNA properties and the screen-context members Blender really provides; the window
    and window manager are stand-ins, everything else (scene, view layer, preferences, selection) is real."""

    def __init__(self, wm: WindowManager):
        allowed = set(bpy.types.Context.bl_rna.properties.keys()) | set(bpy.context.copy().keys())
        allowed.discard("rna_type")
        object.__setattr__(self, "_allowed", allowed)
        object.__setattr__(self, "_own", {"window_manager": wm, "window": wm.windows[0],
                                          "screen": wm.windows[0].screen, "area": None, "region": None})

    def __getattr__(self, key):
        if key.startswith("__"):
            raise AttributeError(key)
        if key not in self._allowed:
            raise AttributeError(f"bpy.types.Context has no attribute {key!r}")
        own = object.__getattribute__(self, "_own")
        return own[key] if key in own else getattr(bpy.context, key)

    def __setattr__(self, key, value):
        raise StandInError(f"bpy.types.Context is read-only (tried to set {key!r})")


def operator_rna(idname: str):
    """The RNA of a registered operator's properties, by its bl_idname ("group.name")."""
    group, name = idname.split(".", 1) if "." in idname else ("", idname)
    try:
        return getattr(getattr(bpy.ops, group), name).get_rna_type()
    except (AttributeError, KeyError) as exc:
        raise StandInError(f"no operator {idname!r} is registered") from exc


class OperatorProperties:
    """What UILayout.operator() returns: only that operator's own properties, type-checked."""

    def __init__(self, idname: str):
        object.__setattr__(self, "_rna", operator_rna(idname))
        object.__setattr__(self, "_idname", idname)
        object.__setattr__(self, "values", {})

    def __setattr__(self, key, value):
        prop = self._rna.properties.get(key)
        if prop is None or key == "rna_type":
            raise StandInError(f"operator {self._idname} has no property {key!r}")
        _check_value(f"{self._idname}.{key}", prop, value)
        self.values[key] = value


class Layout:
    """bpy.types.UILayout: its functions with their parameters checked, its properties with their types; every
    call is logged as (function, text or property) so the test can read what was drawn."""

    def __init__(self, log: list):
        object.__setattr__(self, "_log", log)

    def __setattr__(self, key, value):
        prop = bpy.types.UILayout.bl_rna.properties.get(key)
        if prop is None or key == "rna_type" or prop.is_readonly:
            raise StandInError(f"bpy.types.UILayout has no writable property {key!r}")
        _check_value(f"UILayout.{key}", prop, value)
        object.__setattr__(self, key, value)

    def __getattr__(self, key):
        if key.startswith("__"):
            raise AttributeError(key)
        rna = bpy.types.UILayout.bl_rna
        if key in rna.functions:
            return lambda *args, **kwargs: self._call(key, args, kwargs)
        prop = rna.properties.get(key)
        if prop is None or key == "rna_type":
            raise AttributeError(f"bpy.types.UILayout has no attribute {key!r}")
        return prop.default

    def _call(self, function: str, args: tuple, kwargs: dict):
        named = check_call("UILayout", function, args, kwargs)
        if function in ("prop", "prop_enum", "prop_menu_enum", "prop_search"):
            data, name = named["data"], named["property"]
            if name not in data.bl_rna.properties:
                raise StandInError(f"UILayout.{function}: {data.bl_rna.identifier} has no property {name!r}")
            self._log.append((function, name))
            return None
        if function == "operator":
            self._log.append(("operator", named["operator"], named.get("text")))
            return OperatorProperties(named["operator"])
        if "text" in named:
            self._log.append((function, named["text"]))
        if _output_type("UILayout", function) == "UILayout":
            return Layout(self._log)
        return None


class Drawn:
    """`self` of a Panel's or AddonPreferences' draw(): `layout` is a stand-in Layout; other attributes come from
    the class (panels) or the real registered preferences (`data`)."""

    def __init__(self, cls, log: list, data=None):
        object.__setattr__(self, "_cls", cls)
        object.__setattr__(self, "_data", data)
        object.__setattr__(self, "layout", Layout(log))

    def __getattr__(self, key):
        data = object.__getattribute__(self, "_data")
        if data is not None and key in data.bl_rna.properties:
            return getattr(data, key)
        value = getattr(self._cls, key)
        return types.MethodType(value, self) if isinstance(value, types.FunctionType) else value


def draw(cls, context, data=None) -> list:
    """Run `cls.draw` (poll first, when it has one) on stand-ins; returns what was drawn, [] when poll refused."""
    log: list = []
    poll = getattr(cls, "poll", None)
    if poll is not None and not poll(context):
        return log
    cls.draw(Drawn(cls, log, data), context)
    return log


class _Item:
    """One element of an operator's collection property (e.g. OperatorFileListElement), with its RNA fields."""

    def __init__(self, rna, values: dict):
        for key, value in values.items():
            prop = rna.properties.get(key)
            if prop is None or key == "rna_type":
                raise StandInError(f"{rna.identifier} has no property {key!r}")
            _check_value(f"{rna.identifier}.{key}", prop, value)
            object.__setattr__(self, key, value)


class _Properties:
    def __init__(self, owner: "RunningOperator"):
        self._owner = owner

    def is_property_set(self, name: str, ghost: bool = True) -> bool:
        if name not in self._owner._rna.properties:
            raise StandInError(f"{self._owner._rna.identifier} has no property {name!r}")
        return name in self._owner._given

    def __getattr__(self, key):
        return getattr(self._owner, key)


class RunningOperator:
    """An instance of a registered operator class as Blender makes one: its RNA properties (given ones set, the
    rest at their defaults), `properties`, `report()` checked against Operator.report, the class's own methods."""

    def __init__(self, cls, **given):
        rna = operator_rna(cls.bl_idname)
        object.__setattr__(self, "_cls", cls)
        object.__setattr__(self, "_rna", rna)
        object.__setattr__(self, "_given", {})
        object.__setattr__(self, "reports", [])
        object.__setattr__(self, "properties", _Properties(self))
        for key, value in given.items():
            prop = rna.properties.get(key)
            if prop is None or key == "rna_type":
                raise StandInError(f"{rna.identifier} has no property {key!r}")
            if prop.type == 'COLLECTION':
                value = [_Item(prop.fixed_type, item) for item in value]
            else:
                _check_value(f"{rna.identifier}.{key}", prop, value)
            self._given[key] = value

    def __getattr__(self, key):
        if key.startswith("__"):
            raise AttributeError(key)
        given = object.__getattribute__(self, "_given")
        if key in given:
            return given[key]
        prop = self._rna.properties.get(key)
        if prop is not None and key != "rna_type":
            if prop.type == 'COLLECTION':
                return []
            return prop.default
        value = getattr(self._cls, key)  # AttributeError for what the class does not have
        return types.MethodType(value, self) if isinstance(value, types.FunctionType) else value

    def __setattr__(self, key, value):
        if key in self._rna.properties:
            _check_value(f"{self._rna.identifier}.{key}", self._rna.properties[key], value)
            self._given[key] = value
        else:
            object.__setattr__(self, key, value)

    def report(self, *args, **kwargs):
        named = check_call("Operator", "report", args, kwargs)
        self.reports.append((sorted(named["type"]), named["message"]))


def _result(where: str, result) -> set:
    if not isinstance(result, set) or not result or not result <= OPERATOR_RESULTS:
        raise StandInError(f"{where} returned {result!r}: Blender expects a non-empty subset of "
                           f"{sorted(OPERATOR_RESULTS)}")
    return result


def run_modal(op: RunningOperator, context: Context, *, on_tick=None, limit: float = 300.0, tick: float = 0.05):
    """Blender's side of a modal operator: execute(), then events until modal() says FINISHED or CANCELLED.

    Every third event is a MOUSEMOVE (it must pass through); the rest are TIMER ticks. `on_tick(op, n)` may return
    an Event to deliver instead, or "cancel" to abort the operator the way Blender does (cancel(), no more
    events), or "stop" to stop delivering events (the handler was freed, as unregistering does). Returns a dict:
    result, ticks, how it ended.
    """
    wm = context.window_manager
    if not op.poll(context):
        return {"result": None, "ticks": 0, "ended_by": "poll() refused"}
    first = _result("execute()", op.execute(context))
    if first != {'RUNNING_MODAL'}:
        return {"result": sorted(first), "ticks": 0, "ended_by": "execute"}
    if wm.handlers.count(op) != 1:
        raise StandInError("execute() returned RUNNING_MODAL without adding exactly one modal handler")
    end = time.monotonic() + limit
    n = 0
    while time.monotonic() < end:
        n += 1
        event = on_tick(op, n) if on_tick is not None else None
        if event == "cancel":
            op.cancel(context)
            return {"result": ["CANCELLED"], "ticks": n, "ended_by": "cancel()"}
        if event == "stop":
            return {"result": None, "ticks": n, "ended_by": "handler freed"}
        if event is None:
            event = Event('MOUSEMOVE') if n % 3 == 0 else Event('TIMER')
        result = _result("modal()", op.modal(context, event))
        if result & {'FINISHED', 'CANCELLED'}:
            return {"result": sorted(result), "ticks": n, "ended_by": "modal"}
        time.sleep(tick)
    raise StandInError(f"the modal operator did not end within {limit:.0f} s")
