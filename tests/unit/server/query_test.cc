#include "engine/server/query.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "herald/status.h"
#include "simdjson.h"

namespace herald::server {
namespace {

TEST(Query, DecodesEscapesAndPlusAndKeepsWhatIsNotAnEscape) {
  EXPECT_EQ(PercentDecode("a%20b+c"), "a b c");
  EXPECT_EQ(PercentDecode("%41%6a"), "Aj");
  EXPECT_EQ(PercentDecode("100%"), "100%");
  EXPECT_EQ(PercentDecode("%4"), "%4");
  EXPECT_EQ(PercentDecode("%zz%"), "%zz%");
  EXPECT_EQ(PercentDecode("%00x"), std::string("\0x", 2));
}

TEST(Query, KeepsRepeatedNamesInOrderAndNamesWithoutValues) {
  const Query q = ParseQuery("id=3&profileId=p%201&id=4&flag&&id=");
  EXPECT_EQ(Values(q, "id"), (std::vector<std::string>{"3", "4", ""}));
  EXPECT_EQ(Value(q, "profileId"), "p 1");
  EXPECT_EQ(Value(q, "flag"), "");
  EXPECT_TRUE(q.contains("flag"));
  EXPECT_EQ(Value(q, "missing"), "");
  EXPECT_TRUE(ParseQuery("").empty());
}

TEST(Query, PagingDefaultsAndBounds) {
  auto defaults = ParsePaging({});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->page, 0u);
  EXPECT_EQ(defaults->size, 20u);
  auto given = ParsePaging(ParseQuery("page=3&size=100"));
  ASSERT_TRUE(given.ok());
  EXPECT_EQ(given->page, 3u);
  EXPECT_EQ(given->size, 100u);
  for (const char* bad : {"size=0", "size=101", "page=-1", "page=1x", "size=", "page= 2",
                          "page=99999999999999999999"}) {
    auto p = ParsePaging(ParseQuery(bad));
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    const ValidationErrors errors = ValidationErrorsOf(p.status());
    ASSERT_EQ(errors.size(), 1u) << bad;
    EXPECT_TRUE(errors.contains(std::string(bad).substr(0, 4))) << bad;
  }
}

TEST(Query, APageSlicesAndCountsWhatThereIs) {
  const std::vector<int> items = {1, 2, 3, 4, 5};
  auto encode = [](int i) { return std::to_string(i); };
  EXPECT_EQ(Page(items, {.page = 1, .size = 2}, encode),
            R"({"results":[3,4],"paging":{"page":1,"size":2,"totalPages":3,"totalResults":5}})");
  EXPECT_EQ(Page(items, {.page = 2, .size = 2}, encode),
            R"({"results":[5],"paging":{"page":2,"size":2,"totalPages":3,"totalResults":5}})");
  EXPECT_EQ(Page(items, {.page = 9, .size = 2}, encode),
            R"({"results":[],"paging":{"page":9,"size":2,"totalPages":3,"totalResults":5}})");
  EXPECT_EQ(Page(std::vector<int>{}, {}, encode),
            R"({"results":[],"paging":{"page":0,"size":20,"totalPages":0,"totalResults":0}})");
  // Valid JSON, whatever the results hold.
  simdjson::dom::parser parser;
  const std::string body = PageBody({R"({"a":"b"})", "[]"}, {}, 2);
  EXPECT_EQ(parser.parse(body).error(), simdjson::SUCCESS) << body;
}

}  // namespace
}  // namespace herald::server
