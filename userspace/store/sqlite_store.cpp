// The SQLite-backed Store. Each object is one row: the columns SQLite must enforce (id, unique
// name, the endpoint's owners) next to the object's JSON document, so the model can grow fields
// without a schema migration while uniqueness stays the database's job rather than a racy check in
// C++.
#include <sqlite3.h>

#include <charconv>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "core/json_fields.h"
#include "store/store.h"

namespace bpfnet {
namespace {

constexpr int kBusyTimeoutMs = 5000;

// Schema steps, applied in order inside the opening transaction. A database records the last step
// it has seen as meta.schema_version; a new release appends a step and never edits an old one.
struct Migration {
    int version;
    const char* sql;
};

constexpr Migration kMigrations[] = {
    {1,
     "CREATE TABLE IF NOT EXISTS networks ("
     "  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);"
     // name is nullable: an unnamed sandbox is stored as NULL, which UNIQUE lets repeat.
     "CREATE TABLE IF NOT EXISTS sandboxes ("
     "  id TEXT PRIMARY KEY, name TEXT UNIQUE, doc TEXT NOT NULL);"
     "CREATE TABLE IF NOT EXISTS endpoints ("
     "  id TEXT PRIMARY KEY, network_id TEXT NOT NULL, sandbox_id TEXT NOT NULL,"
     "  doc TEXT NOT NULL);"},
    {2, "CREATE TABLE IF NOT EXISTS address_pools (id TEXT PRIMARY KEY, doc TEXT NOT NULL);"},
    // Indexes for the targeted reads, and the endpoints' addresses, the sandboxes' namespaces and
    // the published ports outside their documents (which stay the truth; put_endpoint rewrites
    // both), so that connecting one endpoint parses neither every endpoint nor every port of the
    // host. Existing endpoints' are copied in.
    {3,
     "ALTER TABLE endpoints ADD COLUMN ip TEXT;"
     "UPDATE endpoints SET ip = json_extract(doc, '$.ip');"
     "ALTER TABLE sandboxes ADD COLUMN netns_path TEXT;"
     "UPDATE sandboxes SET netns_path = json_extract(doc, '$.netns_path');"
     "CREATE INDEX IF NOT EXISTS sandboxes_by_netns ON sandboxes (netns_path);"
     "CREATE INDEX IF NOT EXISTS endpoints_by_network ON endpoints (network_id);"
     "CREATE INDEX IF NOT EXISTS endpoints_by_sandbox ON endpoints (sandbox_id);"
     "CREATE TABLE IF NOT EXISTS published_ports ("
     "  endpoint_id TEXT NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,"
     "  proto TEXT NOT NULL, host_ip TEXT NOT NULL, host_port INTEGER NOT NULL,"
     "  container_port INTEGER NOT NULL);"
     "CREATE INDEX IF NOT EXISTS published_ports_by_port ON published_ports (host_port);"
     "CREATE INDEX IF NOT EXISTS published_ports_by_endpoint ON published_ports (endpoint_id);"
     "DELETE FROM published_ports;"
     "INSERT INTO published_ports (endpoint_id, proto, host_ip, host_port, container_port)"
     "  SELECT e.id, json_extract(p.value, '$.proto'), json_extract(p.value, '$.host_ip'),"
     "         json_extract(p.value, '$.host_port'), json_extract(p.value, '$.container_port')"
     "  FROM endpoints e, json_each(e.doc, '$.ports') p;"},
    // Networks keyed in BPF by a datapath ID instead of their bridge's ifindex: existing networks
    // get their rowid (unique, and what the next network's counter starts above).
    {4,
     "UPDATE networks SET doc = json_set(doc, '$.datapath_id', rowid)"
     "  WHERE IFNULL(json_extract(doc, '$.datapath_id'), 0) = 0;"
     "INSERT INTO meta (key, value)"
     "  SELECT 'next_datapath_id', CAST(IFNULL(MAX(rowid), 0) + 1 AS TEXT) FROM networks WHERE 1"
     "  ON CONFLICT (key) DO NOTHING;"},
};

constexpr const char* kNextDatapathId = "next_datapath_id";

constexpr int kSchemaVersion = kMigrations[std::size(kMigrations) - 1].version;

// close_v2 rather than close: if an error path ever leaves a statement alive, the connection is
// closed when that statement is finalized instead of leaking with SQLITE_BUSY.
struct DbCloser {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
    void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// A bound parameter: text, or SQL NULL when absent.
using Param = std::optional<std::string_view>;

std::string_view column_text(sqlite3_stmt* stmt, int col) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, col));
    if (text == nullptr) return {};
    return {text, static_cast<size_t>(sqlite3_column_bytes(stmt, col))};
}

// Creates the missing directories above `path` one level at a time, so that only the ones we make
// get 0700: an existing parent (/var/lib, /tmp) keeps whatever mode it has.
Status ensure_parent_dir(const std::string& path) {
    namespace fs = std::filesystem;
    if (path.empty() || path == ":memory:" || path.starts_with("file:")) return {};
    std::vector<fs::path> missing;
    std::error_code ec;
    for (fs::path dir = fs::path(path).parent_path(); !dir.empty(); dir = dir.parent_path()) {
        if (fs::exists(dir, ec)) break;
        missing.push_back(dir);
        if (dir == dir.parent_path()) break;
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
        if (fs::create_directory(*it, ec)) {
            fs::permissions(*it, fs::perms::owner_all, fs::perm_options::replace, ec);
        }
        if (ec) {
            return fail(ErrorKind::Internal, fmt::format("cannot create state directory {}: {}",
                                                         it->string(), ec.message()));
        }
    }
    return {};
}

template <typename T>
Result<std::string> encode(const char* kind, const T& object) {
    if (object.id.empty()) {
        return fail(ErrorKind::InvalidArgument, fmt::format("{} has an empty id", kind));
    }
    try {
        return nlohmann::json(object).dump();
    } catch (const nlohmann::json::exception& e) {
        // dump() throws on strings that are not UTF-8 (a label, say); refuse rather than store
        // something we could not read back.
        return fail(ErrorKind::InvalidArgument,
                    fmt::format("{} {} cannot be stored: {}", kind, object.id, e.what()));
    }
}

// The model's decoder for each kind of row.
template <typename T>
Result<T> from_document(const nlohmann::json& document) {
    if constexpr (std::is_same_v<T, Network>) {
        return network_from_json(document);
    } else if constexpr (std::is_same_v<T, Endpoint>) {
        return endpoint_from_json(document);
    } else if constexpr (std::is_same_v<T, Sandbox>) {
        return sandbox_from_json(document);
    } else {
        static_assert(std::is_same_v<T, AddressPool>, "no decoder for this row type");
        return address_pool_from_json(document);
    }
}

// A row that does not decode is reported, never thrown: one bad row must not take the agent down,
// and naming the id tells an operator what to repair.
template <typename T>
Result<T> decode(const char* kind, const std::string& id, std::string_view doc) {
    auto object = [&]() -> Result<T> {
        BPFNET_ASSIGN_OR_RETURN(nlohmann::json document, parse_json(doc));
        return from_document<T>(document);
    }();
    if (!object) {
        return fail(ErrorKind::Internal,
                    fmt::format("stored {} {} is corrupt: {}", kind, id, object.error().message));
    }
    if (object->id != id) {
        return fail(ErrorKind::Internal,
                    fmt::format("stored {} {} is corrupt: its document has id \"{}\"", kind, id,
                                object->id));
    }
    return object;
}

class SqliteStore final : public Store {
  public:
    SqliteStore(DbPtr db, std::string path) : db_(std::move(db)), path_(std::move(path)) {}

    Status init();

    Result<std::vector<Network>> networks() override {
        return load<Network>("network", "SELECT id, doc FROM networks ORDER BY rowid");
    }
    Result<std::vector<Endpoint>> endpoints() override {
        return load<Endpoint>("endpoint", "SELECT id, doc FROM endpoints ORDER BY rowid");
    }
    Result<std::vector<Sandbox>> sandboxes() override {
        return load<Sandbox>("sandbox", "SELECT id, doc FROM sandboxes ORDER BY rowid");
    }
    Result<std::vector<AddressPool>> pools() override {
        return load<AddressPool>("address pool",
                                 "SELECT id, doc FROM address_pools ORDER BY rowid");
    }

    Result<std::vector<Sandbox>> sandboxes_matching(const std::string& ref) override {
        // The prefix through substr, not LIKE: ids are hex, but a ref is user input.
        return load<Sandbox>("sandbox",
                             "SELECT id, doc FROM sandboxes WHERE id = ?1 OR name = ?1 OR "
                             "substr(id, 1, length(?1)) = ?1 ORDER BY rowid",
                             {ref});
    }
    Result<std::optional<Sandbox>> sandbox(const std::string& id) override {
        return load_one<Sandbox>("sandbox", "SELECT id, doc FROM sandboxes WHERE id = ?1", id);
    }
    Result<std::vector<Sandbox>> sandboxes_in_netns(const std::string& netns_path) override {
        return load<Sandbox>("sandbox",
                             "SELECT id, doc FROM sandboxes WHERE netns_path = ?1 ORDER BY rowid",
                             {netns_path});
    }
    Result<std::optional<Endpoint>> endpoint(const std::string& id) override {
        return load_one<Endpoint>("endpoint", "SELECT id, doc FROM endpoints WHERE id = ?1", id);
    }
    Result<std::vector<Endpoint>> endpoints_of_network(const std::string& network_id) override {
        return load<Endpoint>("endpoint",
                              "SELECT id, doc FROM endpoints WHERE network_id = ?1 ORDER BY rowid",
                              {network_id});
    }
    Result<std::vector<Endpoint>> endpoints_of_sandbox(const std::string& sandbox_id) override {
        return load<Endpoint>("endpoint",
                              "SELECT id, doc FROM endpoints WHERE sandbox_id = ?1 ORDER BY rowid",
                              {sandbox_id});
    }
    Result<std::vector<std::pair<std::string, PortBinding>>> published_ports_in(
        uint16_t first, uint16_t last) override;
    Result<std::vector<Ipv4>> addresses_in_network(const std::string& network_id) override;

    // Upserts use ON CONFLICT(id) DO UPDATE, never INSERT OR REPLACE: REPLACE would also "resolve"
    // a name clash by silently deleting the other object's row.
    Status put_network(const Network& network) override {
        BPFNET_ASSIGN_OR_RETURN(std::string doc, encode("network", network));
        return write(
            "INSERT INTO networks (id, name, doc) VALUES (?1, ?2, ?3) "
            "ON CONFLICT (id) DO UPDATE SET name = excluded.name, doc = excluded.doc",
            {network.id, network.name, doc}, "network", network.name);
    }
    Status put_endpoint(const Endpoint& endpoint) override;
    Status put_sandbox(const Sandbox& sandbox) override {
        BPFNET_ASSIGN_OR_RETURN(std::string doc, encode("sandbox", sandbox));
        Param name = sandbox.name.empty() ? Param{} : Param{sandbox.name};
        return write(
            "INSERT INTO sandboxes (id, name, doc, netns_path) VALUES (?1, ?2, ?3, ?4) "
            "ON CONFLICT (id) DO UPDATE SET name = excluded.name, doc = excluded.doc, "
            "netns_path = excluded.netns_path",
            {sandbox.id, name, doc, sandbox.netns_path}, "sandbox", sandbox.name);
    }

    Status put_pool(const AddressPool& pool) override {
        BPFNET_ASSIGN_OR_RETURN(std::string doc, encode("address pool", pool));
        return write(
            "INSERT INTO address_pools (id, doc) VALUES (?1, ?2) "
            "ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
            {pool.id, doc});
    }

    Status delete_network(const std::string& id) override {
        return write("DELETE FROM networks WHERE id = ?1", {id});
    }
    Status delete_endpoint(const std::string& id) override {
        return write("DELETE FROM endpoints WHERE id = ?1", {id});
    }
    Status delete_sandbox(const std::string& id) override {
        return write("DELETE FROM sandboxes WHERE id = ?1", {id});
    }
    Status delete_pool(const std::string& id) override {
        return write("DELETE FROM address_pools WHERE id = ?1", {id});
    }

    Result<std::optional<std::string>> get_meta(const std::string& key) override;
    Status put_meta(const std::string& key, const std::string& value) override {
        return write(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            {key, value});
    }

    Status transaction(const std::function<Status()>& body) override;
    Result<uint32_t> allocate_datapath_id() override;

  private:
    Failure sqlite_failure(std::string_view what) const {
        return fail(ErrorKind::Internal,
                    fmt::format("sqlite: {}: {}", what, sqlite3_errmsg(db_.get())));
    }

    Status exec(const std::string& sql);
    Result<StmtPtr> prepare(std::string_view sql, std::initializer_list<Param> params);
    Status write(std::string_view sql, std::initializer_list<Param> params,
                 const char* named_kind = nullptr, std::string_view name = {});
    void abandon(bool outermost, const std::string& savepoint);
    Status migrate();

    template <typename T>
    Result<std::vector<T>> load(const char* kind, std::string_view sql,
                                std::initializer_list<Param> params = {});
    template <typename T>
    Result<std::optional<T>> load_one(const char* kind, std::string_view sql,
                                      const std::string& id);

    // Recursive: transaction() holds it while the body calls put_*() on this same object.
    std::recursive_mutex mu_;
    DbPtr db_;
    std::string path_;
    int depth_ = 0;  // transaction() nesting; 0 means no transaction is open
};

Status SqliteStore::exec(const std::string& sql) {
    if (sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
        return sqlite_failure(sql);
    }
    return {};
}

Result<StmtPtr> SqliteStore::prepare(std::string_view sql, std::initializer_list<Param> params) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db_.get(), sql.data(), static_cast<int>(sql.size()), &raw, nullptr) !=
        SQLITE_OK) {
        return sqlite_failure(fmt::format("prepare \"{}\"", sql));
    }
    StmtPtr stmt(raw);
    int index = 1;
    for (const Param& param : params) {
        int rc = param ? sqlite3_bind_text(stmt.get(), index, param->data(),
                                           static_cast<int>(param->size()), SQLITE_TRANSIENT)
                       : sqlite3_bind_null(stmt.get(), index);
        if (rc != SQLITE_OK) return sqlite_failure(fmt::format("bind \"{}\"", sql));
        ++index;
    }
    return stmt;
}

Status SqliteStore::write(std::string_view sql, std::initializer_list<Param> params,
                          const char* named_kind, std::string_view name) {
    // Through transaction() so a standalone write is its own transaction, and one inside a body
    // joins the body's.
    return transaction([&]() -> Status {
        BPFNET_ASSIGN_OR_RETURN(StmtPtr stmt, prepare(sql, params));
        if (sqlite3_step(stmt.get()) == SQLITE_DONE) return {};
        // The only UNIQUE constraint besides the primary key (which the upsert absorbs) is the
        // name, so a UNIQUE violation is exactly "name taken".
        if (named_kind != nullptr &&
            sqlite3_extended_errcode(db_.get()) == SQLITE_CONSTRAINT_UNIQUE) {
            return fail(ErrorKind::Conflict,
                        fmt::format("{} name \"{}\" is already in use", named_kind, name));
        }
        return sqlite_failure(fmt::format("\"{}\"", sql));
    });
}

template <typename T>
Result<std::vector<T>> SqliteStore::load(const char* kind, std::string_view sql,
                                         std::initializer_list<Param> params) {
    std::lock_guard lock(mu_);
    BPFNET_ASSIGN_OR_RETURN(StmtPtr stmt, prepare(sql, params));
    std::vector<T> objects;
    for (;;) {
        int rc = sqlite3_step(stmt.get());
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_ROW) return sqlite_failure(fmt::format("\"{}\"", sql));
        std::string id(column_text(stmt.get(), 0));
        BPFNET_ASSIGN_OR_RETURN(T object, decode<T>(kind, id, column_text(stmt.get(), 1)));
        objects.push_back(std::move(object));
    }
    return objects;
}

template <typename T>
Result<std::optional<T>> SqliteStore::load_one(const char* kind, std::string_view sql,
                                               const std::string& id) {
    BPFNET_ASSIGN_OR_RETURN(auto objects, load<T>(kind, sql, {id}));
    if (objects.empty()) return std::optional<T>{};
    return std::optional<T>{std::move(objects.front())};
}

Status SqliteStore::put_endpoint(const Endpoint& endpoint) {
    BPFNET_ASSIGN_OR_RETURN(std::string doc, encode("endpoint", endpoint));
    return transaction([&]() -> Status {
        const std::string ip = endpoint.ip.str();
        BPFNET_TRY(write(
            "INSERT INTO endpoints (id, network_id, sandbox_id, doc, ip) VALUES (?1, ?2, ?3, ?4, "
            "?5) ON CONFLICT (id) DO UPDATE SET network_id = excluded.network_id, "
            "sandbox_id = excluded.sandbox_id, doc = excluded.doc, ip = excluded.ip",
            {endpoint.id, endpoint.network_id, endpoint.sandbox_id, doc, ip}));
        BPFNET_TRY(write("DELETE FROM published_ports WHERE endpoint_id = ?1", {endpoint.id}));
        if (endpoint.ports.empty()) return {};
        // One statement for every row: an endpoint may publish thousands of ports.
        constexpr std::string_view insert =
            "INSERT INTO published_ports (endpoint_id, proto, host_ip, host_port, container_port) "
            "VALUES (?1, ?2, ?3, ?4, ?5)";
        BPFNET_ASSIGN_OR_RETURN(StmtPtr stmt, prepare(insert, {endpoint.id}));
        for (const PortBinding& p : endpoint.ports) {
            const std::string host_ip = p.host_ip.str();
            const char* proto = to_string(p.proto);
            sqlite3_reset(stmt.get());
            if (sqlite3_bind_text(stmt.get(), 2, proto, -1, SQLITE_STATIC) != SQLITE_OK ||
                sqlite3_bind_text(stmt.get(), 3, host_ip.c_str(), -1, SQLITE_TRANSIENT) !=
                    SQLITE_OK ||
                sqlite3_bind_int(stmt.get(), 4, p.host_port) != SQLITE_OK ||
                sqlite3_bind_int(stmt.get(), 5, p.container_port) != SQLITE_OK ||
                sqlite3_step(stmt.get()) != SQLITE_DONE) {
                return sqlite_failure("insert published port");
            }
        }
        return {};
    });
}

Result<std::vector<std::pair<std::string, PortBinding>>> SqliteStore::published_ports_in(
    uint16_t first, uint16_t last) {
    std::lock_guard lock(mu_);
    BPFNET_ASSIGN_OR_RETURN(StmtPtr stmt,
                            prepare("SELECT endpoint_id, proto, host_ip, host_port, container_port "
                                    "FROM published_ports WHERE host_port BETWEEN ?1 AND ?2",
                                    {}));
    sqlite3_bind_int(stmt.get(), 1, first);
    sqlite3_bind_int(stmt.get(), 2, last);
    std::vector<std::pair<std::string, PortBinding>> out;
    for (;;) {
        int rc = sqlite3_step(stmt.get());
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_ROW) return sqlite_failure("read published ports");
        std::string endpoint_id(column_text(stmt.get(), 0));
        auto proto = parse_proto(column_text(stmt.get(), 1));
        auto host_ip = Ipv4::parse(column_text(stmt.get(), 2));
        if (!proto || !host_ip) {
            return fail(
                ErrorKind::Internal,
                fmt::format("stored published port of endpoint {} is corrupt", endpoint_id));
        }
        PortBinding binding{*proto, *host_ip,
                            static_cast<uint16_t>(sqlite3_column_int(stmt.get(), 3)),
                            static_cast<uint16_t>(sqlite3_column_int(stmt.get(), 4))};
        out.emplace_back(std::move(endpoint_id), binding);
    }
    return out;
}

Result<std::vector<Ipv4>> SqliteStore::addresses_in_network(const std::string& network_id) {
    std::lock_guard lock(mu_);
    BPFNET_ASSIGN_OR_RETURN(
        StmtPtr stmt, prepare("SELECT id, ip FROM endpoints WHERE network_id = ?1", {network_id}));
    std::vector<Ipv4> out;
    for (;;) {
        int rc = sqlite3_step(stmt.get());
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_ROW) return sqlite_failure("read endpoint addresses");
        auto ip = Ipv4::parse(column_text(stmt.get(), 1));
        if (!ip) {
            return fail(ErrorKind::Internal,
                        fmt::format("stored endpoint {} is corrupt: address \"{}\"",
                                    column_text(stmt.get(), 0), column_text(stmt.get(), 1)));
        }
        out.push_back(*ip);
    }
    return out;
}

Result<std::optional<std::string>> SqliteStore::get_meta(const std::string& key) {
    std::lock_guard lock(mu_);
    BPFNET_ASSIGN_OR_RETURN(StmtPtr stmt, prepare("SELECT value FROM meta WHERE key = ?1", {key}));
    int rc = sqlite3_step(stmt.get());
    if (rc == SQLITE_DONE) return std::optional<std::string>{};
    if (rc != SQLITE_ROW) return sqlite_failure(fmt::format("read meta \"{}\"", key));
    return std::optional<std::string>{std::string(column_text(stmt.get(), 0))};
}

Result<uint32_t> SqliteStore::allocate_datapath_id() {
    uint32_t id = 0;
    BPFNET_TRY(transaction([&]() -> Status {
        BPFNET_ASSIGN_OR_RETURN(std::optional<std::string> next, get_meta(kNextDatapathId));
        uint64_t value = 0;
        const std::string text = next.value_or("");
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (!next || ec != std::errc{} || end != text.data() + text.size() || value == 0)
            return fail(ErrorKind::Internal,
                        fmt::format("corrupt {} \"{}\"", kNextDatapathId, text));
        if (value > std::numeric_limits<uint32_t>::max())
            return fail(ErrorKind::Exhausted, "every network datapath ID has been given out");
        id = static_cast<uint32_t>(value);
        return put_meta(kNextDatapathId, std::to_string(value + 1));
    }));
    return id;
}

// The outermost call is BEGIN IMMEDIATE ... COMMIT: taking the write lock up front means another
// writer on the file makes us wait (busy_timeout) at BEGIN, instead of failing with SQLITE_BUSY
// halfway through the body when a deferred read lock cannot be upgraded. Nested calls are
// savepoints: a failing inner body undoes exactly its own writes, and the failure it returns makes
// the outer body (which propagates it) roll back everything.
Status SqliteStore::transaction(const std::function<Status()>& body) {
    std::lock_guard lock(mu_);
    const bool outermost = depth_ == 0;
    // SQLite ends a transaction by itself on some errors (SQLITE_FULL, SQLITE_IOERR). A SAVEPOINT
    // then would quietly start a new, independent transaction, so refuse instead.
    if (!outermost && sqlite3_get_autocommit(db_.get()) != 0) {
        return fail(ErrorKind::Internal, "state store: the enclosing transaction was aborted");
    }
    const std::string savepoint = fmt::format("bpfnet_{}", depth_);
    BPFNET_TRY(exec(outermost ? "BEGIN IMMEDIATE" : "SAVEPOINT " + savepoint));

    ++depth_;
    Status result;
    try {
        result = body();
    } catch (...) {
        // Leave the connection clean for the next caller; the exception is still theirs to see.
        --depth_;
        abandon(outermost, savepoint);
        throw;
    }
    --depth_;

    if (!result) {
        abandon(outermost, savepoint);
        return result;
    }
    Status done = exec(outermost ? "COMMIT" : "RELEASE " + savepoint);
    if (!done) abandon(outermost, savepoint);
    return done;
}

// Best effort: errors here mean SQLite already rolled back on its own, which is the goal anyway.
void SqliteStore::abandon(bool outermost, const std::string& savepoint) {
    if (sqlite3_get_autocommit(db_.get()) != 0) return;
    if (outermost) {
        (void)exec("ROLLBACK");
    } else {
        // ROLLBACK TO keeps the savepoint open; RELEASE pops it so the outer level is as it was.
        (void)exec("ROLLBACK TO " + savepoint);
        (void)exec("RELEASE " + savepoint);
    }
}

Status SqliteStore::init() {
    sqlite3_extended_result_codes(db_.get(), 1);
    // Before anything else, so the statements below wait out a concurrent opener.
    sqlite3_busy_timeout(db_.get(), kBusyTimeoutMs);

    // journal_mode answers with the mode it actually got. Some filesystems cannot do WAL; the
    // rollback journal with synchronous=FULL is just as crash-safe, only slower, so carry on.
    BPFNET_ASSIGN_OR_RETURN(StmtPtr pragma, prepare("PRAGMA journal_mode=WAL", {}));
    if (sqlite3_step(pragma.get()) != SQLITE_ROW) return sqlite_failure("PRAGMA journal_mode=WAL");
    std::string journal_mode(column_text(pragma.get(), 0));
    pragma.reset();

    BPFNET_TRY(exec("PRAGMA synchronous=FULL"));
    BPFNET_TRY(exec("PRAGMA foreign_keys=ON"));
    spdlog::debug("opened state store {} (sqlite {}, journal_mode={})", path_, sqlite3_libversion(),
                  journal_mode);
    return migrate();
}

Status SqliteStore::migrate() {
    return transaction([&]() -> Status {
        BPFNET_TRY(
            exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"));
        BPFNET_ASSIGN_OR_RETURN(std::optional<std::string> stored, get_meta("schema_version"));
        int version = 0;
        if (stored) {
            auto [end, ec] =
                std::from_chars(stored->data(), stored->data() + stored->size(), version);
            if (ec != std::errc{} || end != stored->data() + stored->size() || version < 1) {
                return fail(ErrorKind::Internal,
                            fmt::format("corrupt schema_version \"{}\"", *stored));
            }
        }
        if (version > kSchemaVersion) {
            // A newer bpfnet wrote this; guessing at its layout could destroy its data.
            return fail(
                ErrorKind::Unsupported,
                fmt::format("schema version {} is newer than the {} this bpfnet understands",
                            version, kSchemaVersion));
        }
        for (const Migration& step : kMigrations) {
            if (step.version <= version) continue;
            spdlog::debug("migrating state store {} to schema version {}", path_, step.version);
            BPFNET_TRY(exec(step.sql));
            version = step.version;
        }
        return put_meta("schema_version", std::to_string(version));
    });
}

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path) {
    BPFNET_TRY(ensure_parent_dir(path));
    sqlite3* raw = nullptr;
    // NOMUTEX: SqliteStore serializes every use of the connection with its own mutex.
    int rc =
        sqlite3_open_v2(path.c_str(), &raw,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    DbPtr db(raw);  // SQLite usually returns a handle even on failure, and it must still be closed.
    if (rc != SQLITE_OK) {
        return fail(ErrorKind::Internal,
                    fmt::format("cannot open state store {}: {}", path,
                                raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
    }
    auto store = std::make_unique<SqliteStore>(std::move(db), path);
    if (Status status = store->init(); !status) {
        return fail(status.error().kind,
                    fmt::format("cannot open state store {}: {}", path, status.error().message));
    }
    return std::unique_ptr<Store>(std::move(store));
}

}  // namespace bpfnet
