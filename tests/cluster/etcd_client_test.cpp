// EtcdClient against a real etcd (Debian's etcd-server), started per test binary on loopback
// ports of its own with a data directory in /tmp, and stopped at the end.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "cluster/etcd_client.h"
#include "cluster/etcd_test_server.h"

namespace bpfnet {
namespace {

class EtcdClientTest : public testing::EtcdSuite {
  protected:
    void SetUp() override {
        ASSERT_NO_FATAL_FAILURE(EtcdSuite::SetUp());
        auto c = EtcdClient::connect({server_->url()});
        ASSERT_TRUE(c.ok()) << c.error().message;
        client_ = std::move(*c);
        prefix_ = "/test/" +
                  std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
                  "/";
    }
    std::unique_ptr<EtcdClient> client_;
    std::string prefix_;
};

TEST_F(EtcdClientTest, PutGetPrefixAndRemove) {
    ASSERT_TRUE(client_->put(prefix_ + "a", "1").ok());
    ASSERT_TRUE(client_->put(prefix_ + "b", std::string("bin\0ary", 7)).ok());
    ASSERT_TRUE(client_->put(prefix_.substr(0, prefix_.size() - 1) + "x", "outside").ok());
    auto range = client_->get_prefix(prefix_);
    ASSERT_TRUE(range.ok()) << range.error().message;
    ASSERT_EQ(range->kvs.size(), 2u);
    EXPECT_EQ(range->kvs[0].key, prefix_ + "a");
    EXPECT_EQ(range->kvs[1].value, std::string("bin\0ary", 7));
    EXPECT_GT(range->revision, 0);
    auto one = client_->get(prefix_ + "a");
    ASSERT_TRUE(one.ok() && one->has_value());
    EXPECT_EQ((*one)->value, "1");
    ASSERT_TRUE(client_->remove_prefix(prefix_).ok());
    EXPECT_TRUE(client_->get_prefix(prefix_)->kvs.empty());
    EXPECT_FALSE(client_->get(prefix_ + "a")->has_value());
}

TEST_F(EtcdClientTest, CreateIsAClaimOnlyOneWins) {
    auto first = client_->create(prefix_ + "claim", "host-a");
    auto second = client_->create(prefix_ + "claim", "host-b");
    ASSERT_TRUE(first.ok() && second.ok());
    EXPECT_TRUE(*first);
    EXPECT_FALSE(*second);
    EXPECT_EQ((*client_->get(prefix_ + "claim"))->value, "host-a");
    EXPECT_FALSE(*client_->delete_if_value(prefix_ + "claim", "host-b"));
    EXPECT_TRUE(*client_->delete_if_value(prefix_ + "claim", "host-a"));
    EXPECT_FALSE(client_->get(prefix_ + "claim")->has_value());
}

TEST_F(EtcdClientTest, LeasedKeysGoWithTheirLease) {
    auto lease = client_->grant_lease(30);
    ASSERT_TRUE(lease.ok()) << lease.error().message;
    ASSERT_TRUE(client_->put(prefix_ + "ep", "x", *lease).ok());
    EXPECT_EQ((*client_->get(prefix_ + "ep"))->lease, *lease);
    ASSERT_TRUE(client_->keep_alive(*lease).ok());
    ASSERT_TRUE(client_->revoke(*lease).ok());
    EXPECT_FALSE(client_->get(prefix_ + "ep")->has_value());
    auto expired = client_->keep_alive(*lease);
    ASSERT_FALSE(expired.ok());
    EXPECT_EQ(expired.error().kind, ErrorKind::NotFound);
}

TEST_F(EtcdClientTest, WatchDeliversChangesFromARevisionAndStops) {
    const int64_t start = *client_->put(prefix_ + "before", "0") + 1;
    ASSERT_TRUE(client_->put(prefix_ + "k1", "v1").ok());
    ASSERT_TRUE(client_->remove(prefix_ + "before").ok());
    std::atomic<bool> stop{false};
    std::vector<EtcdEvent> seen;
    std::thread writer([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        (void)client_->put(prefix_ + "k2", "v2");
    });
    Status watched = client_->watch_prefix(
        prefix_, start,
        [&](const std::vector<EtcdEvent>& events) {
            seen.insert(seen.end(), events.begin(), events.end());
            return seen.size() < 3;
        },
        stop);
    writer.join();
    ASSERT_TRUE(watched.ok()) << watched.error().message;
    ASSERT_EQ(seen.size(), 3u);
    EXPECT_EQ(seen[0].kv.key, prefix_ + "k1");
    EXPECT_FALSE(seen[0].deleted);
    EXPECT_EQ(seen[1].kv.key, prefix_ + "before");
    EXPECT_TRUE(seen[1].deleted);
    EXPECT_EQ(seen[2].kv.value, "v2");
}

TEST_F(EtcdClientTest, WatchFromACompactedRevisionSaysSo) {
    const int64_t old = *client_->put(prefix_ + "a", "1");
    const int64_t now = *client_->put(prefix_ + "a", "2");
    ASSERT_TRUE(server_->compact(now)) << server_->error();
    std::atomic<bool> stop{false};
    Status watched = client_->watch_prefix(
        prefix_, old, [](const std::vector<EtcdEvent>&) { return true; }, stop);
    ASSERT_FALSE(watched.ok());
    EXPECT_EQ(watched.error().kind, ErrorKind::Conflict);
}

TEST_F(EtcdClientTest, WatchStopsOnRequest) {
    std::atomic<bool> stop{false};
    std::thread stopper([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        stop = true;
    });
    const auto began = std::chrono::steady_clock::now();
    Status watched = client_->watch_prefix(
        prefix_, 0, [](const std::vector<EtcdEvent>&) { return true; }, stop);
    stopper.join();
    EXPECT_TRUE(watched.ok()) << watched.error().message;
    EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(5));
}

TEST(EtcdClient, UnreachableEndpointsAreAClearError) {
    // Port 9 on loopback: nothing listens (discard service is never enabled on test hosts).
    auto c = EtcdClient::connect({"http://127.0.0.1:9"}, 500);
    ASSERT_FALSE(c.ok());
    EXPECT_NE(c.error().message.find("etcd unreachable"), std::string::npos) << c.error().message;
}

TEST(EtcdClient, PrefixEnd) {
    EXPECT_EQ(etcd_prefix_end("/a/"), "/a0");
    EXPECT_EQ(etcd_prefix_end("ab\xff"), "ac");
}

}  // namespace
}  // namespace bpfnet
