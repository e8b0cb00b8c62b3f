// Tests for request bodies and answer classification.
#include "core/protocol.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace hyperline {
namespace {

using nlohmann::json;
auto kNow = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));

TEST(Protocol, BatchBodyIsJsonArrayOfPayloads) {
  std::string a = R"({"customer_id":"c1","event_type":"x","timestamp":1,"record":{"id":"r1"}})";
  std::string b =
      R"({"customer_id":"c2","event_type":"x","timestamp":2,"record":{"id":"r2","n":1.5}})";
  std::string body = BuildBatchBody({a, b});
  json parsed = json::parse(body);
  ASSERT_TRUE(parsed.is_array());
  ASSERT_EQ(parsed.size(), 2u);
  EXPECT_EQ(parsed[0], json::parse(a));
  EXPECT_EQ(parsed[1]["record"]["n"], 1.5);
  EXPECT_EQ(BuildBatchBody({}), "[]");
}

TEST(Protocol, DeleteBody) {
  json body = json::parse(BuildDeleteBody({"r1", "r\"2"}));
  EXPECT_EQ(body["matching"], "record_ids");
  EXPECT_EQ(body["record_ids"], json::array({"r1", "r\"2"}));
}

TEST(Protocol, RecordId) {
  EXPECT_EQ(RecordIdOf(R"({"record":{"id":"abc"}})"), "abc");
  EXPECT_EQ(RecordIdOf(R"({"record":{"id":42}})"), "42");
  EXPECT_FALSE(RecordIdOf(R"({"record":{}})").has_value());
  EXPECT_FALSE(RecordIdOf(R"({"record":"x"})").has_value());
  EXPECT_FALSE(RecordIdOf("not json").has_value());
  EXPECT_FALSE(RecordIdOf("[1]").has_value());
}

TEST(Protocol, Endpoints) {
  EXPECT_STREQ(EndpointPath(false, false), "/v1/events");
  EXPECT_STREQ(EndpointPath(false, true), "/v1/events/batch");
  EXPECT_STREQ(EndpointPath(true, true), "/v1/events");
}

TEST(Protocol, DeliveredBatchWithoutFailures) {
  Answer a = Classify(201, R"({"events_created":[{"record":{"id":"a"}}],"events_failed":[ ]})", "",
                      "", true, kNow);
  EXPECT_EQ(a.verdict, Verdict::kDelivered);
  EXPECT_TRUE(a.failed.empty());
  EXPECT_TRUE(a.message.empty());
}

TEST(Protocol, EventsFailedNameRecordsAndReasons) {
  std::string body = R"({"events_created":[{"record":{"id":"ok"}}],
    "events_failed":[{"customer_id":"c","record":{"id":"bad1"},"error":"record.id too long"},
                     {"record":{"id":7},"error":{"message":"nested"}},
                     {"record":{"id":"bad3"}}]})";
  Answer a = Classify(201, body, "", "", true, kNow);
  EXPECT_EQ(a.verdict, Verdict::kDelivered);
  ASSERT_EQ(a.failed.size(), 3u);
  EXPECT_EQ(a.failed[0].record_id, "bad1");
  EXPECT_EQ(a.failed[0].error, "record.id too long");
  EXPECT_EQ(a.failed[1].record_id, "7");
  EXPECT_NE(a.failed[1].error.find("nested"), std::string::npos);
  EXPECT_EQ(a.failed[2].record_id, "bad3");
  EXPECT_FALSE(a.failed[2].error.empty());
  // A single-event answer is not read for events_failed.
  EXPECT_TRUE(Classify(201, body, "", "", false, kNow).failed.empty());
  // Garbage is not a failure list.
  EXPECT_TRUE(ParseEventsFailed(R"({"events_failed": "x"})").empty());
  EXPECT_TRUE(ParseEventsFailed(R"({"events_failed":[{"record":)").empty());
}

TEST(Protocol, RetryableStatuses) {
  for (int status : {408, 429, 500, 502, 503, 504}) {
    Answer a = Classify(status, R"({"message":"busy"})", "", "", true, kNow);
    EXPECT_EQ(a.verdict, Verdict::kRetry) << status;
    EXPECT_NE(a.message.find(std::to_string(status)), std::string::npos);
    EXPECT_FALSE(a.retry_after_ms.has_value());
  }
  Answer limited = Classify(429, "{}", "", "30", true, kNow);
  EXPECT_EQ(limited.verdict, Verdict::kRetry);
  EXPECT_EQ(limited.retry_after_ms, 30000);
}

TEST(Protocol, NetworkErrorRetries) {
  Answer a = Classify(0, "", "Connection refused", "", true, kNow);
  EXPECT_EQ(a.verdict, Verdict::kRetry);
  EXPECT_EQ(a.message, "Connection refused");
}

TEST(Protocol, ClientErrorsFailAtOnceWithBody) {
  Answer a = Classify(400, R"({"message":"customer_id is required"})", "", "", false, kNow);
  EXPECT_EQ(a.verdict, Verdict::kFailNow);
  EXPECT_NE(a.message.find("400"), std::string::npos);
  EXPECT_NE(a.message.find("customer_id is required"), std::string::npos);
  EXPECT_EQ(Classify(404, "", "", "", false, kNow).verdict, Verdict::kFailNow);
  EXPECT_EQ(Classify(422, "", "", "", false, kNow).verdict, Verdict::kFailNow);
  EXPECT_EQ(Classify(302, "", "", "", false, kNow).verdict, Verdict::kFailNow);
}

TEST(Protocol, TooLargeIsItsOwnVerdict) {
  Answer a = Classify(413, R"({"message":"Request body too large"})", "", "", true, kNow);
  EXPECT_EQ(a.verdict, Verdict::kTooLarge);
  EXPECT_EQ(a.message, R"(HTTP 413: {"message":"Request body too large"})");
}

TEST(Protocol, AuthErrorsAreUnauthorized) {
  EXPECT_EQ(Classify(401, R"({"message":"bad token"})", "", "", true, kNow).verdict,
            Verdict::kUnauthorized);
  EXPECT_EQ(Classify(403, "", "", "", false, kNow).verdict, Verdict::kUnauthorized);
}

TEST(Protocol, TruncateKeepsUtf8) {
  std::string s =
      "ab\xC3\xA9"
      "cd";  // "abécd"
  EXPECT_EQ(Truncate(s, 100), s);
  EXPECT_EQ(Truncate(s, 3), "ab…");  // would split é
  EXPECT_EQ(Truncate(s, 4), "ab\xC3\xA9…");
  std::string long_body(5000, 'x');
  EXPECT_LT(Classify(400, long_body, "", "", false, kNow).message.size(), 2100u);
}

TEST(Protocol, RedactRemovesSecret) {
  EXPECT_EQ(Redact("token sk_live_1 was sk_live_1", "sk_live_1"),
            "token [redacted] was [redacted]");
  EXPECT_EQ(Redact("nothing", ""), "nothing");
}

}  // namespace
}  // namespace hyperline
