"""What every generated Unreal editor script starts with: done/skipped/failed/checked/mismatch lines in the
Output Log (coloured by severity) and in REPORT, `lookup` and `subsystem` for what an editor version may lack,
and `source_dir` (the unzipped files). The script defines REPORT, LOG_PREFIX and SOURCE_DIR before this text."""

PREAMBLE = r'''
def _say(kind, message):
    REPORT[kind].append(message)
    line = "%s %s: %s" % (LOG_PREFIX, kind, message)
    logger = getattr(unreal, {"failed": "log_error", "mismatch": "log_error",
                              "skipped": "log_warning"}.get(kind, "log"), None)
    if logger is not None:
        logger(line)  # the Output Log, coloured by severity
    else:
        print(line)


def done(message):
    _say("done", message)


def skipped(message):
    _say("skipped", message)


def failed(message):
    _say("failed", message)


def checked(message):
    _say("checked", message)


def mismatch(message):
    _say("mismatch", message)


def lookup(dotted):
    """unreal.<dotted> or None when this editor has no such attribute."""
    obj = unreal
    for part in dotted.split("."):
        if not hasattr(obj, part):
            return None
        obj = getattr(obj, part)
    return obj


def source_dir():
    if SOURCE_DIR:
        return SOURCE_DIR
    here = globals().get("__file__")
    if not here:
        raise RuntimeError("set SOURCE_DIR at the top of this script to the folder of the unzipped files")
    return os.path.dirname(os.path.abspath(here))


def subsystem(class_name):
    cls = lookup(class_name)
    if cls is None or lookup("get_editor_subsystem") is None:
        return None
    try:
        return unreal.get_editor_subsystem(cls)
    except Exception:
        return None


'''
