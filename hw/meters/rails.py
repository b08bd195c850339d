"""Which rails make the total on each Jetson: one rule shared by `ina3221`, `tegrastats` and `jtop`.

Rails measure parallel branches on some boards and nested ones on others, so "sum everything" and
"take VDD_IN" are each wrong somewhere. The default total per board (first match wins):

| board (L4T)                      | rails present                        | total                         | scope  |
|----------------------------------|--------------------------------------|-------------------------------|--------|
| AGX Thor (R38, JetPack 7)        | VIN (INA238, carrier-board input)    | VIN                           | board  |
| AGX Orin (R35/R36/R39)           | VDD_GPU_SOC, VDD_CPU_CV, VIN_SYS_5V0 | their sum (1)                 | module |
| TX1, TX2(NX), Xavier NX, Orin NX | VDD_IN                               | VDD_IN                        | module |
| Nano 4 GB (R32)                  | POM_5V_IN                            | POM_5V_IN                     | module |
| AGX Xavier (R32 names)           | GPU, CPU, SOC, CV, VDDRQ, SYS5V      | their sum (parallel inputs)   | module |
| anything else                    | -                                    | all rails, noted in `info()`  | module |

(1) not VDDQ_VDD2_1V8AO: VIN_SYS_5V0 feeds it. Orin Nano is VDD_IN like Orin NX.

Sources: energymon `jetson/JetsonPowerRails.md` and `energymon-jetson.c` default rail names
(connorimes/energymon), jetson-stats 7.2.2 `jtop/core/power.py` (Thor INA238 `VIN`), the Linux
`ina3221` hwmon documentation, NVIDIA forum threads /t/223111 (AGX Orin monitor layout) and /t/366461
(Thor: the INA238 measures the total input).

A spec may name the rails instead: `ina3221:VDD_IN+VDD_MUX` sums them (the same for `tegrastats:` and
`jtop:`). A sum with a carrier-board monitor (VDD_MUX and the other TX1/TX2 dev-kit monitors at
0x42/0x43, or Thor's VIN) has scope `board`, the module's rails `module`.
"""
import collections

from hw.meters.base import MeterSpecError, MeterUnavailable

Rule = collections.namedtuple("Rule", "board present total scope")

BOARD_RULES = (
    Rule("Jetson AGX Thor", ("VIN",), ("VIN",), "board"),
    Rule("Jetson AGX Orin", ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"),
         ("VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"), "module"),
    Rule("module input VDD_IN", ("VDD_IN",), ("VDD_IN",), "module"),
    Rule("Jetson Nano", ("POM_5V_IN",), ("POM_5V_IN",), "module"),
    Rule("Jetson AGX Xavier", ("GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"),
         ("GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"), "module"),
)
# The inputs every known board's total is made of (and tests check against).
TOTAL_RAILS = tuple(sorted({name for rule in BOARD_RULES for name in rule.total}))
# Monitors outside the module: TX1/TX2 dev-kit carrier (0x42, 0x43) and Thor's board input.
CARRIER_RAILS = frozenset(("VDD_MUX", "VDD_5V0_IO_SYS", "VDD_5V_IO_SYS", "VDD_3V3_SYS", "VDD_3V3_IO_SLP",
                           "VDD_3V3_IO", "VDD_1V8_IO", "VDD_3V3_SYS_M2", "VDD_M2_IN", "VIN"))
# Rails only a Thor module has: where they appear without VIN, the board's input is missing from the rails.
THOR_ONLY_RAILS = frozenset(("VDD_CPU_SOC_MSS",))
# The largest supply of any Jetson developer kit is the Thor kit's 240 W USB-C adapter: an on-board
# total above this is a broken reading, not power.
JETSON_MAX_W = 250.0


class Total:
    """The rails that sum to `watts`, how they were chosen, and the scope of that sum."""

    def __init__(self, rails, rule, scope):
        self.rails = tuple(rails)
        self.rule = rule
        self.scope = scope

    def watts(self, rails):
        return sum(rails[name] for name in self.rails)

    def info(self):
        return {"total_rails": list(self.rails), "total_rule": self.rule}


def parse_rail_sum(arg):
    """`VDD_IN+VDD_MUX` -> ('VDD_IN', 'VDD_MUX'); None for no argument."""
    if not arg:
        return None
    names = tuple(name.strip() for name in arg.split("+"))
    if not all(names) or len(set(names)) != len(names):
        raise MeterSpecError("rail sum %r: give distinct rail names joined by +, e.g. VDD_IN+VDD_MUX" % arg)
    return names


def pick_total(names, wanted=None):
    """The Total for a board whose rails are `names`; `wanted` (a parsed rail sum) overrides the rule."""
    names = set(names)
    if wanted:
        missing = [n for n in wanted if n not in names]
        if missing:
            raise MeterUnavailable("rail %s not found; rails here: %s" % (", ".join(missing), ", ".join(sorted(names))))
        scope = "board" if CARRIER_RAILS.intersection(wanted) else "module"
        return Total(wanted, "user: " + "+".join(wanted), scope)
    for rule in BOARD_RULES:
        if all(n in names for n in rule.present):
            return Total(rule.total, rule.board, rule.scope)
    return Total(sorted(names), "sum of all rails (layout not recognised; name the rails: KIND:A+B)", "module")


def follow(total, seen, rails, wanted=None):
    """(Total, note or None) for a reading whose `rails` include some not in `seen` (updated in place): the
    rule again over every rail seen so far, so a rail that appears after open is never silently left out."""
    seen.update(rails)
    new = pick_total(seen, wanted)
    if new.rails == total.rails:
        return total, None
    return new, "rail %s appeared after open: total now %s (%s), was %s" % (
        ", ".join(sorted(set(new.rails) - set(total.rails))) or "-", "+".join(new.rails), new.rule,
        "+".join(total.rails))
