// The field layer every JSON decoder uses: typed getters, Presence, absent vs null, the paths and
// messages errors carry, and parse_json.
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/ipv4.h"
#include "core/json_fields.h"

namespace bpfnet {
namespace {

using nlohmann::json;

// The message of a failed Result; "" (and a test failure) when it did not fail.
template <typename T>
std::string error_of(const Result<T>& result) {
    EXPECT_FALSE(result.ok());
    if (result.ok()) return "";
    EXPECT_EQ(result.error().kind, ErrorKind::InvalidArgument);
    return result.error().message;
}

JsonObject root(const json& document) {
    auto object = JsonObject::root(document);
    EXPECT_TRUE(object.ok());
    return *object;
}

TEST(ParseJson, ParsesOrReportsWhereTheTextBroke) {
    auto parsed = parse_json(R"({"a": [1, "b"]})");
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ((*parsed)["a"][1], "b");
    for (const char* text : {"", "   ", "{", "{\"a\": }", "[1,]", "{} trailing", "\"\xff\""}) {
        SCOPED_TRACE(text);
        const std::string message = error_of(parse_json(text));
        EXPECT_NE(message.find("parse error"), std::string::npos) << message;
    }
    EXPECT_NE(error_of(parse_json("{\"a\": }")).find("column 7"), std::string::npos);
}

TEST(ParseJson, ANumberTooLargeForADoubleIsTheSendersError) {
    // nlohmann reports this as out_of_range, not parse_error; found by fuzz_docker_plugin.
    for (const char* text : {"1e999", "{\"MTU\": -4e5272}", "[44444444444444444444e527266690]"}) {
        SCOPED_TRACE(text);
        const std::string message = error_of(parse_json(text));
        EXPECT_NE(message.find("number overflow"), std::string::npos) << message;
    }
}

TEST(JsonObjectRoot, MustBeAnObject) {
    EXPECT_TRUE(JsonObject::root(json::object()).ok());
    for (const json& value : {json::array(), json(nullptr), json("x"), json(5), json(true)}) {
        EXPECT_EQ(error_of(JsonObject::root(value)), "document must be a JSON object");
    }
    EXPECT_EQ(error_of(JsonObject::root(json::array(), "request body")),
              "request body must be a JSON object");
}

TEST(JsonObjectGetters, ReadValuesOfTheirType) {
    const json doc = {{"s", "text"},
                      {"b", true},
                      {"i", -42},
                      {"u", 7u},
                      {"o", {{"k", "v"}}},
                      {"a", {1, 2}},
                      {"m", {{"x", "1"}, {"y", ""}}},
                      {"l", {"p", "q"}}};
    const JsonObject j = root(doc);
    EXPECT_EQ(*j.string("s"), "text");
    EXPECT_EQ(*j.boolean("b"), true);
    EXPECT_EQ(*j.integer("i"), -42);
    EXPECT_EQ(*j.integer("u"), 7);
    EXPECT_EQ(j.object("o")->raw(), doc["o"]);
    EXPECT_EQ(j.array("a")->size(), 2u);
    EXPECT_EQ(*j.string_map("m"), (std::map<std::string, std::string>{{"x", "1"}, {"y", ""}}));
    EXPECT_EQ(*j.string_array("l"), (std::vector<std::string>{"p", "q"}));
    EXPECT_TRUE(j.has("s"));
    EXPECT_FALSE(j.has("nothing"));
}

TEST(JsonObjectGetters, AbsentAndNullAreTheSameAndReadAsEmpty) {
    const json doc = {{"null", nullptr}};
    const JsonObject j = root(doc);
    EXPECT_FALSE(j.has("null"));
    for (const char* key : {"null", "absent"}) {
        SCOPED_TRACE(key);
        EXPECT_EQ(*j.string(key), "");
        EXPECT_EQ(*j.boolean(key), false);
        EXPECT_EQ(*j.integer(key), 0);
        EXPECT_TRUE(j.object(key)->raw().empty());
        EXPECT_TRUE(j.array(key)->empty());
        EXPECT_TRUE(j.string_map(key)->empty());
        EXPECT_TRUE(j.string_array(key)->empty());
    }
}

TEST(JsonObjectGetters, RequiredFieldsMustBePresentAndNotNull) {
    const json doc = {{"null", nullptr}, {"there", ""}};
    const JsonObject j = root(doc);
    EXPECT_EQ(*j.string("there", Presence::Required), "");
    for (const char* key : {"null", "absent"}) {
        const std::string expected = std::string("missing field \"") + key + "\"";
        EXPECT_EQ(error_of(j.string(key, Presence::Required)), expected);
        EXPECT_EQ(error_of(j.boolean(key, Presence::Required)), expected);
        EXPECT_EQ(error_of(j.integer(key, Presence::Required)), expected);
        EXPECT_EQ(error_of(j.object(key, Presence::Required)), expected);
        EXPECT_EQ(error_of(j.array(key, Presence::Required)), expected);
        EXPECT_EQ(error_of(j.string_map(key, Presence::Required)), expected);
        EXPECT_EQ(error_of(j.string_array(key, Presence::Required)), expected);
    }
}

TEST(JsonObjectGetters, WrongTypesNameTheFieldAndTheType) {
    const json doc = {{"n", 5}, {"s", "5"}, {"f", 1.5}, {"o", json::object()}};
    const JsonObject j = root(doc);
    EXPECT_EQ(error_of(j.string("n")), "field \"n\" must be a string");
    EXPECT_EQ(error_of(j.boolean("s")), "field \"s\" must be a boolean");
    EXPECT_EQ(error_of(j.integer("s")), "field \"s\" must be an integer");
    EXPECT_EQ(error_of(j.integer("f")), "field \"f\" must be an integer");
    EXPECT_EQ(error_of(j.object("s")), "field \"s\" must be an object");
    EXPECT_EQ(error_of(j.array("o")), "field \"o\" must be an array");
    EXPECT_EQ(error_of(j.string_map("n")), "field \"n\" must be an object");
    EXPECT_EQ(error_of(j.string_array("o")), "field \"o\" must be an array");
    // A string is not a boolean nor a number here, whatever it spells.
    EXPECT_FALSE(root(json{{"b", "true"}}).boolean("b").ok());
}

TEST(JsonObjectGetters, IntegersOutsideTheirRangeFail) {
    const json doc = {{"port", 65536},
                      {"neg", -1},
                      {"big", std::numeric_limits<uint64_t>::max()},
                      {"min", std::numeric_limits<int64_t>::min()}};
    const JsonObject j = root(doc);
    EXPECT_EQ(error_of(j.integer("port", Presence::Optional, 0, 65535)),
              "field \"port\" must be an integer from 0 to 65535");
    EXPECT_EQ(error_of(j.integer("neg", Presence::Optional, 0, 65535)),
              "field \"neg\" must be an integer from 0 to 65535");
    EXPECT_FALSE(j.integer("big").ok());  // above int64's range
    EXPECT_EQ(*j.integer("min"), std::numeric_limits<int64_t>::min());
    EXPECT_EQ(*j.integer("port", Presence::Optional, 65536, 65536), 65536);
    // Unsigned values compare as such against a positive lower bound.
    EXPECT_FALSE(root(json{{"u", 3u}}).integer("u", Presence::Optional, 5, 10).ok());
    EXPECT_EQ(*root(json{{"u", 7u}}).integer("u", Presence::Optional, 5, 10), 7);
}

TEST(JsonObjectGetters, MapValuesAndArrayElementsMustBeStrings) {
    const json doc = {{"Options", {{"a", "1"}, {"b", 2}}},
                      {"Null", {{"a", nullptr}}},
                      {"Aliases", {"web", nullptr}}};
    const JsonObject j = root(doc);
    EXPECT_EQ(error_of(j.string_map("Options")),
              "field \"Options\": value of \"b\" must be a string");
    EXPECT_EQ(error_of(j.string_map("Null")), "field \"Null\": value of \"a\" must be a string");
    EXPECT_EQ(error_of(j.string_array("Aliases")), "field \"Aliases[1]\" must be a string");
}

TEST(JsonPaths, NestedFieldsAreNamedByTheirPath) {
    const json doc = json::parse(R"({
        "IPAM": {"Config": [{"Subnet": 10, "AuxiliaryAddresses": {"r": 1}}, 7]},
        "EndpointConfig": {"IPAMConfig": {}}
    })");
    const JsonObject body = root(doc);
    auto ipam = body.object("IPAM");
    ASSERT_TRUE(ipam.ok());
    EXPECT_EQ(ipam->path(), "IPAM");
    auto configs = ipam->array("Config");
    ASSERT_TRUE(configs.ok());
    EXPECT_EQ(configs->path(), "IPAM.Config");
    auto config = configs->object(0);
    ASSERT_TRUE(config.ok());
    EXPECT_EQ(config->path(), "IPAM.Config[0]");
    EXPECT_EQ(error_of(config->string("Subnet")),
              "field \"IPAM.Config[0].Subnet\" must be a string");
    EXPECT_EQ(error_of(config->string_map("AuxiliaryAddresses")),
              "field \"IPAM.Config[0].AuxiliaryAddresses\": value of \"r\" must be a string");
    EXPECT_EQ(error_of(configs->object(1)), "field \"IPAM.Config[1]\" must be an object");
    EXPECT_EQ(error_of(configs->string(0)), "field \"IPAM.Config[0]\" must be a string");
    EXPECT_EQ(error_of(config->string("Gateway", Presence::Required)),
              "missing field \"IPAM.Config[0].Gateway\"");
    // A left-out object still knows where it would be.
    auto absent = body.object("Nothing");
    ASSERT_TRUE(absent.ok());
    EXPECT_EQ(error_of(absent->string("X", Presence::Required)), "missing field \"Nothing.X\"");
    EXPECT_EQ(body.object("EndpointConfig")->object("IPAMConfig")->path_of("IPv4Address"),
              "EndpointConfig.IPAMConfig.IPv4Address");
}

TEST(JsonPaths, InvalidValuesAndParsedFieldsNameTheField) {
    const json doc = {{"ipam", {{"subnet", "10.0.0.0/33"}, {"gateway", "10.0.0.1"}}}};
    const JsonObject ipam = *root(doc).object("ipam");
    EXPECT_EQ(ipam.invalid("gateway", "not inside the subnet").error.message,
              "field \"ipam.gateway\": not inside the subnet");
    auto gateway = parsed_field(ipam, "gateway", Ipv4::parse);
    ASSERT_TRUE(gateway.ok());
    EXPECT_EQ(gateway->str(), "10.0.0.1");
    const std::string message =
        error_of(parsed_field(ipam, "subnet", [](std::string_view t) { return Cidr::parse(t); }));
    EXPECT_EQ(message.rfind("field \"ipam.subnet\": ", 0), 0u) << message;
    EXPECT_NE(message.find("10.0.0.0/33"), std::string::npos) << message;
    EXPECT_EQ(error_of(parsed_field(ipam, "range", Ipv4::parse)), "missing field \"ipam.range\"");
}

}  // namespace
}  // namespace bpfnet
