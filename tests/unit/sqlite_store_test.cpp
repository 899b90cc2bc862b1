#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/model.h"
#include "store/store.h"

namespace bpfnet {
namespace {

namespace fs = std::filesystem;

#define EXPECT_OK(expr)                                                           \
    do {                                                                          \
        const auto& expect_ok_result_ = (expr);                                   \
        EXPECT_TRUE(expect_ok_result_.ok()) << expect_ok_result_.error().message; \
    } while (0)

#define ASSERT_OK(expr)                                                           \
    do {                                                                          \
        const auto& assert_ok_result_ = (expr);                                   \
        ASSERT_TRUE(assert_ok_result_.ok()) << assert_ok_result_.error().message; \
    } while (0)

Network make_network(const std::string& id, const std::string& name) {
    Network n;
    n.id = id;
    n.name = name;
    n.options = {{"com.docker.network.bridge.name", "br-" + name}};
    n.labels = {{"team", "infra"}};
    n.ipam.subnet = *Cidr::parse("10.20.0.0/24");
    n.ipam.gateway = *Ipv4::parse("10.20.0.1");
    n.ipam.ip_range = *Cidr::parse("10.20.0.128/25");
    n.ipam.user_subnet = true;
    n.internal = true;
    n.created = "2024-01-02T03:04:05.000000006Z";
    n.state = Lifecycle::Ready;
    n.bridge_name = "br-" + id.substr(0, 8);
    return n;
}

Endpoint make_endpoint(const std::string& id, const std::string& network_id,
                       const std::string& sandbox_id) {
    Endpoint e;
    e.id = id;
    e.network_id = network_id;
    e.sandbox_id = sandbox_id;
    e.ifname = "eth0";
    e.host_ifname = "veth" + id.substr(0, 7);
    e.ip = *Ipv4::parse("10.20.0.2");
    e.mac = MacAddr::from_ipv4(e.ip);
    e.aliases = {"web", "frontend"};
    e.default_route = true;
    e.created = "2024-01-02T03:04:05Z";
    e.state = Lifecycle::Creating;
    return e;
}

Sandbox make_sandbox(const std::string& id, const std::string& name) {
    Sandbox s;
    s.id = id;
    s.name = name;
    s.netns_path = "/run/bpfnet/netns/" + id;
    s.created = "2024-01-02T03:04:05Z";
    s.state = Lifecycle::Deleting;
    return s;
}

// The model has no operator==; its JSON form covers every field, so compare that.
template <typename T>
nlohmann::json as_json(const T& value) {
    return nlohmann::json(value);
}

class SqliteStoreTest : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "bpfnet-store-test-XXXXXX").string();
        ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
        // A directory that does not exist yet, so every test also covers its creation.
        path_ = (dir_ / "state" / "bpfnet.db").string();
        open();
    }

    void TearDown() override {
        store_.reset();
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    void open() {
        store_.reset();
        auto opened = open_sqlite_store(path_);
        ASSERT_TRUE(opened.ok()) << opened.error().message;
        store_ = std::move(opened).value();
    }

    // Runs SQL against the database file behind the store's back (to plant corrupt rows).
    void raw_exec(const std::string& sql) {
        sqlite3* db = nullptr;
        ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
        char* err = nullptr;
        int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
        std::string message = err != nullptr ? err : "";
        sqlite3_free(err);
        sqlite3_close(db);
        ASSERT_EQ(rc, SQLITE_OK) << message;
    }

    // Takes away what schema version 4 added, as an older agent's database lacks it.
    void undo_schema_4() {
        raw_exec("DELETE FROM meta WHERE key = 'next_datapath_id'");
        raw_exec("UPDATE networks SET doc = json_remove(doc, '$.datapath_id')");
    }
    // Takes away what schema versions 3 and later added.
    void undo_schema_3() {
        undo_schema_4();
        raw_exec("DROP TABLE published_ports");
        raw_exec("DROP INDEX endpoints_by_network");
        raw_exec("DROP INDEX endpoints_by_sandbox");
        raw_exec("ALTER TABLE endpoints DROP COLUMN ip");
        raw_exec("DROP INDEX sandboxes_by_netns");
        raw_exec("ALTER TABLE sandboxes DROP COLUMN netns_path");
    }

    size_t network_count() {
        auto networks = store_->networks();
        EXPECT_TRUE(networks.ok()) << networks.error().message;
        return networks.ok() ? networks->size() : 0;
    }

    fs::path dir_;
    std::string path_;
    std::unique_ptr<Store> store_;
};

TEST_F(SqliteStoreTest, NetworkRoundTrip) {
    Network n = make_network("n1", "frontend");
    // Kept out of make_network so that a decoding bug here fails this one test, not every test.
    n.ipam.aux_addresses = {{"printer", *Ipv4::parse("10.20.0.5")},
                            {"scanner", *Ipv4::parse("10.20.0.6")}};
    ASSERT_OK(store_->put_network(n));
    auto networks = store_->networks();
    ASSERT_OK(networks);
    ASSERT_EQ(networks->size(), 1u);
    EXPECT_EQ(as_json((*networks)[0]), as_json(n));
}

TEST_F(SqliteStoreTest, EndpointRoundTrip) {
    Endpoint e = make_endpoint("e1234567890", "n1", "s1");
    ASSERT_OK(store_->put_endpoint(e));
    auto endpoints = store_->endpoints();
    ASSERT_OK(endpoints);
    ASSERT_EQ(endpoints->size(), 1u);
    EXPECT_EQ(as_json((*endpoints)[0]), as_json(e));
}

TEST_F(SqliteStoreTest, SandboxRoundTrip) {
    Sandbox s = make_sandbox("s1", "web-1");
    ASSERT_OK(store_->put_sandbox(s));
    auto sandboxes = store_->sandboxes();
    ASSERT_OK(sandboxes);
    ASSERT_EQ(sandboxes->size(), 1u);
    EXPECT_EQ(as_json((*sandboxes)[0]), as_json(s));
}

TEST_F(SqliteStoreTest, ListsInInsertionOrderAndUpsertKeepsPosition) {
    ASSERT_OK(store_->put_network(make_network("b", "second")));
    ASSERT_OK(store_->put_network(make_network("a", "first")));
    ASSERT_OK(store_->put_network(make_network("b", "second-renamed")));
    auto networks = store_->networks();
    ASSERT_OK(networks);
    ASSERT_EQ(networks->size(), 2u);
    EXPECT_EQ((*networks)[0].id, "b");
    EXPECT_EQ((*networks)[1].id, "a");
}

TEST_F(SqliteStoreTest, PutUpsertsById) {
    Network n = make_network("n1", "old-name");
    ASSERT_OK(store_->put_network(n));
    n.name = "new-name";
    n.state = Lifecycle::Deleting;
    ASSERT_OK(store_->put_network(n));
    auto networks = store_->networks();
    ASSERT_OK(networks);
    ASSERT_EQ(networks->size(), 1u);
    EXPECT_EQ(as_json((*networks)[0]), as_json(n));
    // The rename freed the old name for someone else.
    EXPECT_OK(store_->put_network(make_network("n2", "old-name")));

    Endpoint e = make_endpoint("e1", "n1", "s1");
    ASSERT_OK(store_->put_endpoint(e));
    e.sandbox_id = "s2";
    e.state = Lifecycle::Ready;
    ASSERT_OK(store_->put_endpoint(e));
    auto endpoints = store_->endpoints();
    ASSERT_OK(endpoints);
    ASSERT_EQ(endpoints->size(), 1u);
    EXPECT_EQ(as_json((*endpoints)[0]), as_json(e));

    Sandbox s = make_sandbox("s1", "c1");
    ASSERT_OK(store_->put_sandbox(s));
    s.netns_path = "/proc/42/ns/net";
    ASSERT_OK(store_->put_sandbox(s));
    auto sandboxes = store_->sandboxes();
    ASSERT_OK(sandboxes);
    ASSERT_EQ(sandboxes->size(), 1u);
    EXPECT_EQ(as_json((*sandboxes)[0]), as_json(s));
}

TEST_F(SqliteStoreTest, DeleteIsIdempotent) {
    ASSERT_OK(store_->put_network(make_network("n1", "a")));
    ASSERT_OK(store_->put_network(make_network("n2", "b")));
    ASSERT_OK(store_->put_endpoint(make_endpoint("e1", "n1", "s1")));
    ASSERT_OK(store_->put_sandbox(make_sandbox("s1", "c1")));

    EXPECT_OK(store_->delete_network("n1"));
    EXPECT_OK(store_->delete_network("n1"));
    EXPECT_OK(store_->delete_network("never-existed"));
    EXPECT_OK(store_->delete_endpoint("e1"));
    EXPECT_OK(store_->delete_endpoint("e1"));
    EXPECT_OK(store_->delete_sandbox("s1"));
    EXPECT_OK(store_->delete_sandbox("s1"));

    auto networks = store_->networks();
    ASSERT_OK(networks);
    ASSERT_EQ(networks->size(), 1u);
    EXPECT_EQ((*networks)[0].id, "n2");
    EXPECT_TRUE(store_->endpoints()->empty());
    EXPECT_TRUE(store_->sandboxes()->empty());
}

TEST_F(SqliteStoreTest, DuplicateNetworkNameIsConflict) {
    Network first = make_network("n1", "web");
    ASSERT_OK(store_->put_network(first));
    auto status = store_->put_network(make_network("n2", "web"));
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().kind, ErrorKind::Conflict);
    EXPECT_EQ(status.error().message, "network name \"web\" is already in use");
    // Re-putting the owner under its own name is an update, not a clash.
    EXPECT_OK(store_->put_network(first));
    auto networks = store_->networks();
    ASSERT_OK(networks);
    ASSERT_EQ(networks->size(), 1u);
    EXPECT_EQ((*networks)[0].id, "n1");
}

TEST_F(SqliteStoreTest, DuplicateSandboxNameIsConflictButUnnamedSandboxesAreNot) {
    ASSERT_OK(store_->put_sandbox(make_sandbox("s1", "c1")));
    auto status = store_->put_sandbox(make_sandbox("s2", "c1"));
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().kind, ErrorKind::Conflict);
    EXPECT_EQ(status.error().message, "sandbox name \"c1\" is already in use");

    EXPECT_OK(store_->put_sandbox(make_sandbox("s3", "")));
    EXPECT_OK(store_->put_sandbox(make_sandbox("s4", "")));
    auto sandboxes = store_->sandboxes();
    ASSERT_OK(sandboxes);
    ASSERT_EQ(sandboxes->size(), 3u);
    EXPECT_EQ((*sandboxes)[2].name, "");
}

TEST_F(SqliteStoreTest, EmptyIdIsRejected) {
    auto status = store_->put_network(make_network("", "web"));
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().kind, ErrorKind::InvalidArgument);
    EXPECT_EQ(network_count(), 0u);
}

TEST_F(SqliteStoreTest, TransactionCommitsAllWrites) {
    ASSERT_OK(store_->transaction([&]() -> Status {
        BPFNET_TRY(store_->put_network(make_network("n1", "a")));
        BPFNET_TRY(store_->put_sandbox(make_sandbox("s1", "c1")));
        return store_->put_endpoint(make_endpoint("e1", "n1", "s1"));
    }));
    EXPECT_EQ(network_count(), 1u);
    EXPECT_EQ(store_->sandboxes()->size(), 1u);
    EXPECT_EQ(store_->endpoints()->size(), 1u);
}

TEST_F(SqliteStoreTest, FailedTransactionLeavesNothing) {
    ASSERT_OK(store_->put_network(make_network("n0", "existing")));
    auto status = store_->transaction([&]() -> Status {
        BPFNET_TRY(store_->put_network(make_network("n1", "a")));
        BPFNET_TRY(store_->put_sandbox(make_sandbox("s1", "c1")));
        BPFNET_TRY(store_->put_endpoint(make_endpoint("e1", "n1", "s1")));
        BPFNET_TRY(store_->delete_network("n0"));
        BPFNET_TRY(store_->put_meta("k", "v"));
        return fail(ErrorKind::Exhausted, "no free address");
    });
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().kind, ErrorKind::Exhausted);
    EXPECT_EQ(status.error().message, "no free address");

    auto networks = store_->networks();
    ASSERT_OK(networks);
    ASSERT_EQ(networks->size(), 1u);
    EXPECT_EQ((*networks)[0].id, "n0");
    EXPECT_TRUE(store_->sandboxes()->empty());
    EXPECT_TRUE(store_->endpoints()->empty());
    EXPECT_FALSE(store_->get_meta("k")->has_value());
}

TEST_F(SqliteStoreTest, ConflictInsideTransactionRollsBackEarlierWrites) {
    ASSERT_OK(store_->put_network(make_network("n0", "taken")));
    auto status = store_->transaction([&]() -> Status {
        BPFNET_TRY(store_->put_network(make_network("n1", "fresh")));
        return store_->put_network(make_network("n2", "taken"));
    });
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().kind, ErrorKind::Conflict);
    EXPECT_EQ(network_count(), 1u);
}

TEST_F(SqliteStoreTest, NestedTransactionFailureRollsBackOuter) {
    auto status = store_->transaction([&]() -> Status {
        BPFNET_TRY(store_->put_network(make_network("outer", "outer")));
        return store_->transaction([&]() -> Status {
            BPFNET_TRY(store_->put_network(make_network("inner", "inner")));
            return fail(ErrorKind::Internal, "inner failed");
        });
    });
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().message, "inner failed");
    EXPECT_EQ(network_count(), 0u);
    // The connection is usable again afterwards.
    EXPECT_OK(store_->put_network(make_network("after", "after")));
    EXPECT_EQ(network_count(), 1u);
}

TEST_F(SqliteStoreTest, NestedTransactionsCommitTogether) {
    ASSERT_OK(store_->transaction([&]() -> Status {
        BPFNET_TRY(store_->put_network(make_network("n1", "a")));
        BPFNET_TRY(store_->transaction([&]() -> Status {
            return store_->transaction(
                [&]() -> Status { return store_->put_network(make_network("n2", "b")); });
        }));
        return store_->put_network(make_network("n3", "c"));
    }));
    EXPECT_EQ(network_count(), 3u);
}

TEST_F(SqliteStoreTest, OuterBodyThatHandlesInnerFailureKeepsOnlyItsOwnWrites) {
    // Nested calls are savepoints: the failed inner body's writes are undone even though the outer
    // body decides to carry on and commit.
    ASSERT_OK(store_->transaction([&]() -> Status {
        BPFNET_TRY(store_->put_network(make_network("outer", "outer")));
        auto inner = store_->transaction([&]() -> Status {
            BPFNET_TRY(store_->put_network(make_network("inner", "inner")));
            return fail(ErrorKind::Conflict, "inner failed");
        });
        EXPECT_FALSE(inner.ok());
        return Status{};
    }));
    auto networks = store_->networks();
    ASSERT_OK(networks);
    ASSERT_EQ(networks->size(), 1u);
    EXPECT_EQ((*networks)[0].id, "outer");
}

TEST_F(SqliteStoreTest, ExceptionInBodyRollsBackAndPropagates) {
    EXPECT_THROW((void)store_->transaction([&]() -> Status {
        EXPECT_OK(store_->put_network(make_network("n1", "a")));
        throw std::runtime_error("boom");
    }),
                 std::runtime_error);
    EXPECT_EQ(network_count(), 0u);
    // Depth and the SQLite transaction were unwound: a new standalone write commits on its own.
    ASSERT_OK(store_->put_network(make_network("n2", "b")));
    open();
    EXPECT_EQ(network_count(), 1u);
}

TEST_F(SqliteStoreTest, DataSurvivesReopen) {
    Network n = make_network("n1", "a");
    Endpoint e = make_endpoint("e1", "n1", "s1");
    Sandbox s = make_sandbox("s1", "c1");
    ASSERT_OK(store_->put_network(n));
    ASSERT_OK(store_->put_endpoint(e));
    ASSERT_OK(store_->put_sandbox(s));
    ASSERT_OK(store_->put_meta("instance_id", "abc"));

    open();
    auto networks = store_->networks();
    auto endpoints = store_->endpoints();
    auto sandboxes = store_->sandboxes();
    ASSERT_OK(networks);
    ASSERT_OK(endpoints);
    ASSERT_OK(sandboxes);
    ASSERT_EQ(networks->size(), 1u);
    ASSERT_EQ(endpoints->size(), 1u);
    ASSERT_EQ(sandboxes->size(), 1u);
    EXPECT_EQ(as_json((*networks)[0]), as_json(n));
    EXPECT_EQ(as_json((*endpoints)[0]), as_json(e));
    EXPECT_EQ(as_json((*sandboxes)[0]), as_json(s));
    auto meta = store_->get_meta("instance_id");
    ASSERT_OK(meta);
    EXPECT_EQ(*meta, std::optional<std::string>("abc"));
    // Constraints survive too.
    EXPECT_EQ(store_->put_network(make_network("n2", "a")).error().kind, ErrorKind::Conflict);
}

TEST_F(SqliteStoreTest, MetaGetPut) {
    auto missing = store_->get_meta("instance_id");
    ASSERT_OK(missing);
    EXPECT_FALSE(missing->has_value());

    ASSERT_OK(store_->put_meta("instance_id", "one"));
    ASSERT_OK(store_->put_meta("instance_id", "two"));
    ASSERT_OK(store_->put_meta("empty", ""));
    EXPECT_EQ(*store_->get_meta("instance_id"), std::optional<std::string>("two"));
    EXPECT_EQ(*store_->get_meta("empty"), std::optional<std::string>(""));

    auto version = store_->get_meta("schema_version");
    ASSERT_OK(version);
    EXPECT_EQ(*version, std::optional<std::string>("4"));
}

TEST_F(SqliteStoreTest, CorruptDocumentIsAnErrorNamingTheRow) {
    ASSERT_OK(store_->put_network(make_network("good", "good")));
    ASSERT_OK(store_->put_network(make_network("bad", "bad")));
    ASSERT_OK(store_->put_sandbox(make_sandbox("s1", "c1")));
    ASSERT_OK(store_->put_endpoint(make_endpoint("e1", "good", "s1")));
    store_.reset();

    raw_exec("UPDATE networks SET doc = '{not json' WHERE id = 'bad'");
    // Valid JSON that is not a sandbox / has a bad field.
    raw_exec("UPDATE sandboxes SET doc = '[1, 2]' WHERE id = 's1'");
    raw_exec("UPDATE endpoints SET doc = json_set(doc, '$.ip', '999.1.1.1') WHERE id = 'e1'");
    open();

    auto networks = store_->networks();
    ASSERT_FALSE(networks.ok());
    EXPECT_EQ(networks.error().kind, ErrorKind::Internal);
    EXPECT_NE(networks.error().message.find("network bad"), std::string::npos)
        << networks.error().message;

    auto sandboxes = store_->sandboxes();
    ASSERT_FALSE(sandboxes.ok());
    EXPECT_EQ(sandboxes.error().kind, ErrorKind::Internal);
    EXPECT_NE(sandboxes.error().message.find("s1"), std::string::npos);

    auto endpoints = store_->endpoints();
    ASSERT_FALSE(endpoints.ok());
    EXPECT_EQ(endpoints.error().kind, ErrorKind::Internal);
    EXPECT_NE(endpoints.error().message.find("e1"), std::string::npos);
    // ... and the field to repair, or where the text stops being JSON.
    EXPECT_NE(endpoints.error().message.find("field \"ip\""), std::string::npos)
        << endpoints.error().message;
    EXPECT_NE(networks.error().message.find("parse error"), std::string::npos)
        << networks.error().message;
    EXPECT_NE(sandboxes.error().message.find("must be a JSON object"), std::string::npos)
        << sandboxes.error().message;

    // The operator's way out: delete (or rewrite) the named row.
    ASSERT_OK(store_->delete_network("bad"));
    EXPECT_EQ(network_count(), 1u);
}

TEST_F(SqliteStoreTest, DocumentWhoseIdDisagreesWithItsRowIsCorrupt) {
    ASSERT_OK(store_->put_network(make_network("n1", "a")));
    store_.reset();
    raw_exec("UPDATE networks SET doc = json_set(doc, '$.id', 'other') WHERE id = 'n1'");
    open();
    auto networks = store_->networks();
    ASSERT_FALSE(networks.ok());
    EXPECT_EQ(networks.error().kind, ErrorKind::Internal);
    EXPECT_NE(networks.error().message.find("n1"), std::string::npos);
}

TEST_F(SqliteStoreTest, AddressPoolsRoundTripAndDelete) {
    AddressPool pool;
    pool.id = "bpfnet/10.9.0.0/24/10.9.0.128/25";
    pool.subnet = *Cidr::parse("10.9.0.0/24");
    pool.ip_range = *Cidr::parse("10.9.0.128/25");
    pool.allocated = {*Ipv4::parse("10.9.0.128"), *Ipv4::parse("10.9.0.200")};
    pool.references = 2;
    pool.created = "2024-01-02T03:04:05Z";
    ASSERT_OK(store_->put_pool(pool));
    store_.reset();
    open();
    auto pools = store_->pools();
    ASSERT_OK(pools);
    ASSERT_EQ(pools->size(), 1u);
    const AddressPool& back = pools->front();
    EXPECT_EQ(back.id, pool.id);
    EXPECT_EQ(back.subnet, pool.subnet);
    EXPECT_EQ(back.ip_range, pool.ip_range);
    EXPECT_EQ(back.allocated, pool.allocated);
    EXPECT_EQ(back.references, 2);
    ASSERT_OK(store_->delete_pool(pool.id));
    EXPECT_TRUE(store_->pools()->empty());
}

TEST_F(SqliteStoreTest, OwnersRoundTripAndDefaultToBpfnet) {
    Network docker_net = make_network("d1", "from-docker");
    docker_net.owner = Owner::Docker;
    ASSERT_OK(store_->put_network(docker_net));
    ASSERT_OK(store_->put_network(make_network("n1", "native")));
    // A row written before owners existed has no "owner" field at all.
    store_.reset();
    raw_exec("UPDATE networks SET doc = json_remove(doc, '$.owner') WHERE id = 'n1'");
    open();
    auto networks = store_->networks();
    ASSERT_OK(networks);
    ASSERT_EQ(networks->size(), 2u);
    EXPECT_EQ((*networks)[0].owner, Owner::Docker);
    EXPECT_EQ((*networks)[1].owner, Owner::Bpfnet);
}

TEST_F(SqliteStoreTest, VersionOneDatabaseGainsThePoolsTable) {
    store_.reset();
    // What a version-1 agent left behind: no address_pools table, nor what version 3 adds.
    raw_exec("DROP TABLE address_pools");
    undo_schema_3();
    raw_exec("UPDATE meta SET value = '1' WHERE key = 'schema_version'");
    open();
    EXPECT_EQ(*store_->get_meta("schema_version"), std::optional<std::string>("4"));
    AddressPool pool;
    pool.id = "bpfnet/10.8.0.0/16";
    pool.subnet = *Cidr::parse("10.8.0.0/16");
    EXPECT_OK(store_->put_pool(pool));
}

TEST_F(SqliteStoreTest, TargetedReadsFindOnlyTheirRows) {
    ASSERT_OK(store_->put_sandbox(make_sandbox("aa11", "web")));
    ASSERT_OK(store_->put_sandbox(make_sandbox("aa22", "db")));
    ASSERT_OK(store_->put_sandbox(make_sandbox("bb33", "aa")));
    ASSERT_OK(store_->put_endpoint(make_endpoint("e1", "n1", "aa11")));
    ASSERT_OK(store_->put_endpoint(make_endpoint("e2", "n1", "aa22")));
    ASSERT_OK(store_->put_endpoint(make_endpoint("e3", "n2", "aa11")));

    auto ids = [](const auto& objects) {
        std::vector<std::string> out;
        for (const auto& o : objects) out.push_back(o.id);
        return out;
    };
    EXPECT_EQ(ids(*store_->endpoints_of_network("n1")), (std::vector<std::string>{"e1", "e2"}));
    EXPECT_EQ(ids(*store_->endpoints_of_sandbox("aa11")), (std::vector<std::string>{"e1", "e3"}));
    EXPECT_TRUE(store_->endpoints_of_network("n9")->empty());
    EXPECT_EQ(store_->endpoint("e2")->value().sandbox_id, "aa22");
    EXPECT_FALSE(store_->endpoint("e9")->has_value());
    EXPECT_EQ(store_->sandbox("aa22")->value().name, "db");
    auto addresses = store_->addresses_in_network("n1");
    ASSERT_OK(addresses);
    EXPECT_EQ(addresses->size(), 2u);
    EXPECT_TRUE(store_->addresses_in_network("n9")->empty());
    auto in_netns = store_->sandboxes_in_netns("/run/bpfnet/netns/aa22");
    ASSERT_OK(in_netns);
    EXPECT_EQ(ids(*in_netns), (std::vector<std::string>{"aa22"}));
    EXPECT_TRUE(store_->sandboxes_in_netns("/run/bpfnet/netns/zz")->empty());
    EXPECT_FALSE(store_->sandbox("aa")->has_value());  // a name is not an id

    // Every sandbox a reference may mean: exact id, exact name, id prefix.
    EXPECT_EQ(ids(*store_->sandboxes_matching("aa")),
              (std::vector<std::string>{"aa11", "aa22", "bb33"}));
    EXPECT_EQ(ids(*store_->sandboxes_matching("web")), (std::vector<std::string>{"aa11"}));
    EXPECT_EQ(ids(*store_->sandboxes_matching("aa2")), (std::vector<std::string>{"aa22"}));
    // A reference is data, not a pattern.
    EXPECT_TRUE(store_->sandboxes_matching("a%")->empty());
    EXPECT_TRUE(store_->sandboxes_matching("_a11")->empty());
}

TEST_F(SqliteStoreTest, PublishedPortsFollowTheirEndpoint) {
    Endpoint e = make_endpoint("e1", "n1", "s1");
    e.ports = {PortBinding{IpProto::Tcp, Ipv4{}, 8080, 80},
               PortBinding{IpProto::Udp, *Ipv4::parse("10.1.2.3"), 8081, 53}};
    ASSERT_OK(store_->put_endpoint(e));
    Endpoint other = make_endpoint("e2", "n1", "s2");
    other.ports = {PortBinding{IpProto::Tcp, Ipv4{}, 9000, 90}};
    ASSERT_OK(store_->put_endpoint(other));

    auto in = [&](uint16_t first, uint16_t last) {
        std::vector<std::string> out;
        auto ports = store_->published_ports_in(first, last);
        EXPECT_TRUE(ports.ok()) << ports.error().message;
        for (const auto& [id, b] : *ports) out.push_back(id + " " + b.str());
        std::sort(out.begin(), out.end());
        return out;
    };
    EXPECT_EQ(in(8080, 8081),
              (std::vector<std::string>{"e1 " + e.ports[0].str(), "e1 " + e.ports[1].str()}));
    EXPECT_EQ(in(8081, 9000),
              (std::vector<std::string>{"e1 " + e.ports[1].str(), "e2 " + other.ports[0].str()}));
    EXPECT_TRUE(in(1, 8079).empty());

    e.ports = {PortBinding{IpProto::Tcp, Ipv4{}, 8085, 80}};  // republished elsewhere
    ASSERT_OK(store_->put_endpoint(e));
    EXPECT_EQ(in(8080, 8090), (std::vector<std::string>{"e1 " + e.ports[0].str()}));
    ASSERT_OK(store_->delete_endpoint("e1"));
    EXPECT_TRUE(in(8080, 8090).empty());
    EXPECT_EQ(in(9000, 9000).size(), 1u);
}

TEST_F(SqliteStoreTest, DatapathIdsAreGivenOnceEachAcrossRestarts) {
    EXPECT_EQ(*store_->allocate_datapath_id(), 1u);
    EXPECT_EQ(*store_->allocate_datapath_id(), 2u);
    open();
    EXPECT_EQ(*store_->allocate_datapath_id(), 3u);
    Network n = make_network("n1", "one");
    n.datapath_id = 3;
    ASSERT_OK(store_->put_network(n));
    ASSERT_OK(store_->delete_network("n1"));
    // A deleted network's ID is not given again.
    EXPECT_EQ(*store_->allocate_datapath_id(), 4u);
    auto networks = store_->networks();
    ASSERT_OK(networks);
    EXPECT_TRUE(networks->empty());
}

TEST_F(SqliteStoreTest, DatapathIdRoundTripsAndACorruptCounterIsAnError) {
    Network n = make_network("n1", "one");
    n.datapath_id = 4000000000u;
    ASSERT_OK(store_->put_network(n));
    auto back = store_->networks();
    ASSERT_OK(back);
    ASSERT_EQ(back->size(), 1u);
    EXPECT_EQ(back->front().datapath_id, 4000000000u);
    ASSERT_OK(store_->put_meta("next_datapath_id", "x1"));
    auto bad = store_->allocate_datapath_id();
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message.find("corrupt next_datapath_id"), std::string::npos);
    ASSERT_OK(store_->put_meta("next_datapath_id", "4294967296"));
    EXPECT_EQ(store_->allocate_datapath_id().error().kind, ErrorKind::Exhausted);
}

TEST_F(SqliteStoreTest, VersionThreeDatabaseGivesItsNetworksDatapathIds) {
    ASSERT_OK(store_->put_network(make_network("n1", "one")));
    ASSERT_OK(store_->put_network(make_network("n2", "two")));
    store_.reset();
    // What a version-3 agent left behind: networks keyed in BPF by their bridge's ifindex.
    undo_schema_4();
    raw_exec("UPDATE meta SET value = '3' WHERE key = 'schema_version'");
    open();
    EXPECT_EQ(*store_->get_meta("schema_version"), std::optional<std::string>("4"));
    auto networks = store_->networks();
    ASSERT_OK(networks);
    ASSERT_EQ(networks->size(), 2u);
    const uint32_t first = (*networks)[0].datapath_id, second = (*networks)[1].datapath_id;
    EXPECT_NE(first, 0u);
    EXPECT_NE(second, 0u);
    EXPECT_NE(first, second);
    const uint32_t next = *store_->allocate_datapath_id();
    EXPECT_GT(next, std::max(first, second));
}

TEST_F(SqliteStoreTest, VersionTwoDatabaseGainsItsEndpointsPortRows) {
    Endpoint e = make_endpoint("e1", "n1", "s1");
    e.ports = {PortBinding{IpProto::Sctp, *Ipv4::parse("10.1.2.3"), 7000, 70}};
    ASSERT_OK(store_->put_endpoint(e));
    ASSERT_OK(store_->put_sandbox(make_sandbox("s1", "one")));
    store_.reset();
    // What a version-2 agent left behind: ports only inside the endpoint documents.
    undo_schema_3();
    raw_exec("UPDATE meta SET value = '2' WHERE key = 'schema_version'");
    open();
    EXPECT_EQ(*store_->get_meta("schema_version"), std::optional<std::string>("4"));
    auto ports = store_->published_ports_in(7000, 7000);
    ASSERT_OK(ports);
    ASSERT_EQ(ports->size(), 1u);
    EXPECT_EQ(ports->front().first, "e1");
    EXPECT_EQ(ports->front().second.str(), e.ports[0].str());
    EXPECT_EQ(store_->endpoints_of_sandbox("s1")->size(), 1u);
    auto addresses = store_->addresses_in_network("n1");
    ASSERT_OK(addresses);
    EXPECT_EQ(*addresses, std::vector<Ipv4>{e.ip});
    EXPECT_EQ(store_->sandboxes_in_netns("/run/bpfnet/netns/s1")->size(), 1u);
}

TEST_F(SqliteStoreTest, NewerSchemaVersionIsRefused) {
    ASSERT_OK(store_->put_meta("schema_version", "99"));
    store_.reset();
    auto opened = open_sqlite_store(path_);
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(opened.error().kind, ErrorKind::Unsupported);
    EXPECT_NE(opened.error().message.find("99"), std::string::npos);
}

TEST_F(SqliteStoreTest, GarbageFileIsAnErrorNotACrash) {
    store_.reset();
    std::string garbage = (dir_ / "garbage.db").string();
    std::ofstream(garbage) << std::string(8192, 'x');
    auto opened = open_sqlite_store(garbage);
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(opened.error().kind, ErrorKind::Internal);
    EXPECT_NE(opened.error().message.find(garbage), std::string::npos);
}

TEST_F(SqliteStoreTest, CreatesMissingParentDirectoriesPrivately) {
    std::string nested = (dir_ / "a" / "b" / "state.db").string();
    auto opened = open_sqlite_store(nested);
    ASSERT_OK(opened);
    for (const fs::path& created : {dir_ / "a", dir_ / "a" / "b"}) {
        struct stat st {};
        ASSERT_EQ(stat(created.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0777, 0700u) << created;
    }
    // The directory that already existed keeps its mode.
    struct stat st {};
    ASSERT_EQ(stat(dir_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u);  // mkdtemp's mode, untouched
}

TEST_F(SqliteStoreTest, ConcurrentWritersAreSerialized) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 5; ++i) {
                std::string id = "t" + std::to_string(t) + "n" + std::to_string(i);
                EXPECT_OK(store_->transaction([&]() -> Status {
                    BPFNET_TRY(store_->put_network(make_network(id, id)));
                    return store_->put_meta("last", id);
                }));
                EXPECT_OK(store_->networks());
            }
        });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(network_count(), 20u);
}

// A process that dies mid-transaction (crash, SIGKILL, power loss of the process) must leave the
// store exactly as it was before the transaction began.
TEST_F(SqliteStoreTest, UncommittedTransactionOfCrashedProcessIsInvisible) {
    ASSERT_OK(store_->put_network(make_network("before", "before")));
    // SQLite connections must not cross fork(): the child opens its own.
    store_.reset();

    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        auto opened = open_sqlite_store(path_);
        if (!opened.ok()) _exit(10);
        Store& store = **opened;
        (void)store.transaction([&]() -> Status {
            for (int i = 0; i < 40; ++i) {
                Network n = make_network("crash" + std::to_string(i), "crash" + std::to_string(i));
                // ~100 KiB per row: more than SQLite's page cache holds, so uncommitted pages
                // spill into the WAL file and recovery has to ignore them, not just drop memory.
                n.labels["padding"] = std::string(100 * 1024, 'p');
                if (!store.put_network(n).ok()) _exit(11);
            }
            if (!store.put_sandbox(make_sandbox("crash-sandbox", "crash")).ok()) _exit(12);
            if (!store.delete_network("before").ok()) _exit(13);
            _exit(0);  // no COMMIT, no destructors, no close
        });
        _exit(14);
    }
    int wstatus = 0;
    ASSERT_EQ(waitpid(child, &wstatus, 0), child);
    ASSERT_TRUE(WIFEXITED(wstatus));
    ASSERT_EQ(WEXITSTATUS(wstatus), 0) << "child failed before the simulated crash";

    open();
    auto networks = store_->networks();
    ASSERT_OK(networks);
    ASSERT_EQ(networks->size(), 1u);
    EXPECT_EQ((*networks)[0].id, "before");
    EXPECT_TRUE(store_->sandboxes()->empty());
    // The dead writer's lock went with it.
    EXPECT_OK(store_->put_network(make_network("after", "after")));
    EXPECT_EQ(network_count(), 2u);
}

}  // namespace
}  // namespace bpfnet
