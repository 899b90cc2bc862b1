#include "datapath/pinned_maps.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/fd.h"
#include "core/result.h"

namespace bpfnet {

Status drop_incompatible_pins(bpf_object* obj, const std::string& pin_dir) {
    bpf_map* map = nullptr;
    bpf_object__for_each_map(map, obj) {
        // LIBBPF_PIN_BY_NAME maps get their pin path (<pin_root_path>/<name>) at open.
        const char* pin = bpf_map__pin_path(map);
        if (pin == nullptr) continue;
        const std::string path = pin;
        if (path.rfind(pin_dir + "/", 0) != 0) continue;
        int raw = bpf_obj_get(path.c_str());
        if (raw < 0) continue;  // not pinned yet: load creates it
        Fd fd(raw);
        bpf_map_info info{};
        uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0) continue;
        const bool same = info.type == static_cast<uint32_t>(bpf_map__type(map)) &&
                          info.key_size == bpf_map__key_size(map) &&
                          info.value_size == bpf_map__value_size(map) &&
                          info.max_entries == bpf_map__max_entries(map) &&
                          info.map_flags == bpf_map__map_flags(map);
        if (same) continue;
        spdlog::warn(
            "pinned map {} has another layout (type {} key {} value {} entries {}; now type {} "
            "key {} value {} entries {}): replacing it",
            path, info.type, info.key_size, info.value_size, info.max_entries,
            static_cast<int>(bpf_map__type(map)), bpf_map__key_size(map), bpf_map__value_size(map),
            bpf_map__max_entries(map));
        if (::unlink(path.c_str()) != 0 && errno != ENOENT)
            return fail(ErrorKind::Internal,
                        fmt::format("removing {}: {}", path, std::strerror(errno)));
    }
    return {};
}

}  // namespace bpfnet
