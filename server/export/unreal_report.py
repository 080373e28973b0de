"""The reporting every generated Unreal editor script shares: done/skipped/failed/checked/mismatch lines in the
Output Log (coloured by severity) and in REPORT, and `lookup` for attributes an editor version may lack. The
script defines REPORT and LOG_PREFIX before this text."""

REPORTING = r'''
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


'''
