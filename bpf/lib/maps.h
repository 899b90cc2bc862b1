/* Every BPF map of bpfnet is defined once, in a map header under bpf/lib/ (this file and the
 * per-program headers listed below), with its key/value types from bpfnet/abi.h.
 *
 * Conventions:
 *  - Names start with bpfnet_ and fit in 15 characters. The kernel keeps only BPF_OBJ_NAME_LEN - 1
 *    characters of a map name, and `bpftool map show` / `bpfnet inspect` show that kernel name; a
 *    longer name would be silently cut and stop matching its pin file. BPFNET_CHECK_MAP_NAME()
 *    turns that into a compile error.
 *  - Maps the agent shares between programs, or that must survive an agent restart, are pinned by
 *    name: `__uint(pinning, LIBBPF_PIN_BY_NAME)` (BPFNET_PIN_BY_NAME). libbpf then reuses the map
 *    pinned at <pin_root>/<name> or creates and pins it. The agent sets pin_root_path to
 *    <bpffs root>/bpfnet (/sys/fs/bpf/bpfnet by default) through bpf_object_open_opts, so several
 *    agents (tests) can run side by side with different roots.
 *  - Maps that are private to one load (probe and test programs) are not pinned: a pinned map would
 *    carry counts from one run into the next.
 *
 * Every object that includes a map header gets every map defined in it, used or not, and libbpf
 * creates them all at load. So the maps are grouped by the program that owns them, each group in
 * its own header, and an object includes only the groups it uses:
 *  - this file: the pipeline/probe program's private counters (bpfnet_pl_stats);
 *  - lib/endpoint_maps.h: the endpoint datapath (networks, endpoints, subnets, per-endpoint and
 *    drop counters, the event ring buffer), all pinned by name and shared with the agent and CLI.
 * The definition macros (BPFNET_PIN_BY_NAME, BPFNET_CHECK_MAP_NAME) live in lib/map_defs.h. A map
 * is still defined exactly once: a later program that shares a group includes its header. */
#ifndef BPFNET_BPF_LIB_MAPS_H
#define BPFNET_BPF_LIB_MAPS_H

#include "lib/map_defs.h"

/* Per-load packet/byte counters of the pipeline program. A plain (not per-CPU) ARRAY updated with
 * atomic adds: the probe and tests read one value without summing CPUs, and the cost of a shared
 * cache line does not matter for a probe. Not pinned (see above). */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, BPFNET_PIPELINE_STATS_ENTRIES);
    __type(key, __u32);
    __type(value, struct bpfnet_pipeline_stats);
} bpfnet_pl_stats SEC(".maps");
BPFNET_CHECK_MAP_NAME(bpfnet_pl_stats);

#endif /* BPFNET_BPF_LIB_MAPS_H */
