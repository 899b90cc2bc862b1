/* Helpers for defining bpfnet maps; the conventions they enforce are described in lib/maps.h.
 * Kept apart from the map definitions so each program's map header (lib/maps.h,
 * lib/endpoint_maps.h) can use them without pulling in the maps of another program. */
#ifndef BPFNET_BPF_LIB_MAP_DEFS_H
#define BPFNET_BPF_LIB_MAP_DEFS_H

#include <linux/bpf.h>

#include <bpf/bpf_helpers.h>

#include "bpfnet/abi.h"

#define BPFNET_PIN_BY_NAME __uint(pinning, LIBBPF_PIN_BY_NAME)

/* sizeof a string literal counts its NUL, exactly like BPF_OBJ_NAME_LEN does. */
#define BPFNET_CHECK_MAP_NAME(name)                   \
    _Static_assert(sizeof(#name) <= BPF_OBJ_NAME_LEN, \
                   "map name " #name " is longer than 15 chars: the kernel would truncate it")

#endif /* BPFNET_BPF_LIB_MAP_DEFS_H */
