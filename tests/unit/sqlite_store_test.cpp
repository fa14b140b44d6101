#include "store/sqlite/sqlite_store.hpp"

#include <filesystem>
#include <random>
#include <thread>

#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <gtest/gtest.h>

#include "run_awaitable.hpp"
#include "store_fixture.hpp"

using namespace creatord;
namespace asio = boost::asio;

namespace {


class StoreTest : public StoreFixture {
 protected:
  void SetUp() override {
    StoreFixture::SetUp();
    store_ = stores_;
  }
  void open() {
    reopen();
    store_ = stores_;
  }
  Creator make(const std::string& handle, const std::string& name = "Name") {
    CreatorFields f;
    f.name = name;
    f.handle = handle;
    f.tags = std::vector<std::string>{"a", "b"};
    auto c = run(store_->create_creator(f));
    EXPECT_TRUE(c) << c.error().message;
    return c.value();
  }
  Store* store_ = nullptr;
};

}  // namespace

TEST_P(StoreTest, CreateGetUpdateDelete) {
  Creator c = make("mei", "Mei");
  EXPECT_GT(c.id, 0);
  auto got = run(store_->get_creator(c.id));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->name, "Mei");
  EXPECT_EQ(got->tags, (std::vector<std::string>{"a", "b"}));

  CreatorFields patch;
  patch.bio = "new bio";
  patch.email = std::optional<std::string>{"mei@example.com"};
  auto upd = run(store_->update_creator(c.id, patch));
  ASSERT_TRUE(upd);
  EXPECT_EQ(upd->bio, "new bio");
  EXPECT_EQ(upd->name, "Mei");
  EXPECT_GE(upd->updated_at_ms, c.updated_at_ms);

  ASSERT_TRUE(run(store_->delete_creator(c.id)));
  auto gone = run(store_->get_creator(c.id));
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, ErrorCode::not_found);
  auto again = run(store_->delete_creator(c.id));
  EXPECT_EQ(again.error().code, ErrorCode::not_found);
}

TEST_P(StoreTest, HandleIsUniqueAndAFailedWriteDoesNotUndoOthers) {
  make("taken");
  CreatorFields dup;
  dup.name = "Other";
  dup.handle = "taken";
  auto r = run(store_->create_creator(dup));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ErrorCode::conflict);
  EXPECT_EQ(r.error().field.value(), "handle");
  EXPECT_EQ(run(store_->count_creators()).value(), 1);
}

TEST_P(StoreTest, ConcurrentWritesAreBatchedAndAllCommitted) {
  asio::io_context ioc;
  auto guard = asio::make_work_guard(ioc);
  int done = 0, ok = 0;
  constexpr int kN = 500;
  for (int i = 0; i < kN; ++i) {
    asio::co_spawn(
        ioc,
        [&, i]() -> asio::awaitable<void> {
          CreatorFields f;
          f.name = "C" + std::to_string(i);
          f.handle = "c" + std::to_string(i % 490);  // 10 conflicts
          auto c = co_await store_->create_creator(f);
          ok += c.ok();
          if (++done == kN) ioc.stop();
        },
        asio::detached);
  }
  ioc.run();
  EXPECT_EQ(ok, 490);
  EXPECT_EQ(run(store_->count_creators()).value(), 490);
}

TEST_P(StoreTest, KeysetPagingIsNewestFirstAndComplete) {
  for (int i = 0; i < 25; ++i) make("h" + std::to_string(i), i % 5 == 0 ? "Special Five" : "Plain");
  std::vector<int64_t> seen;
  PageQuery q;
  q.limit = 10;
  for (;;) {
    auto page = run(store_->list_creators(q));
    ASSERT_TRUE(page);
    for (const auto& c : page->items) seen.push_back(c.id);
    if (!page->has_more) break;
    q.before_id = page->items.back().id;
  }
  ASSERT_EQ(seen.size(), 25u);
  EXPECT_TRUE(std::is_sorted(seen.rbegin(), seen.rend()));
  PageQuery search;
  search.q = "special";
  auto found = run(store_->list_creators(search));
  EXPECT_EQ(found->items.size(), 5u);
  PageQuery literal;
  literal.q = "%";
  EXPECT_EQ(run(store_->list_creators(literal))->items.size(), 0u);  // % is not a wildcard
}

TEST_P(StoreTest, ImagesBelongToACreatorAndGoWithIt) {
  Creator c = make("img");
  NewImage n;
  n.creator_id = c.id;
  n.sha256 = std::string(64, 'a');
  n.content_type = "image/png";
  n.width = 10;
  n.height = 20;
  n.size_bytes = 99;
  auto img = run(store_->add_image(n));
  ASSERT_TRUE(img) << img.error().message;
  auto list = run(store_->list_images(c.id, PageQuery{}));
  ASSERT_EQ(list->items.size(), 1u);
  EXPECT_EQ(list->items[0].height, 20);
  NewImage orphan = n;
  orphan.creator_id = 999;
  EXPECT_EQ(run(store_->add_image(orphan)).error().code, ErrorCode::not_found);
  EXPECT_EQ(run(store_->list_images(999, PageQuery{})).error().code, ErrorCode::not_found);

  auto unref = run(store_->unreferenced_blobs({std::string(64, 'a'), std::string(64, 'b')}));
  EXPECT_EQ(unref.value(), std::vector<std::string>{std::string(64, 'b')});
  ASSERT_TRUE(run(store_->delete_creator(c.id)));
  EXPECT_EQ(run(store_->get_image(img->id)).error().code, ErrorCode::not_found);
}

TEST_P(StoreTest, DataSurvivesReopen) {
  Creator c = make("durable");
  open();
  EXPECT_TRUE(run(store_->get_creator(c.id)));
}

INSTANTIATE_TEST_SUITE_P(Stores, StoreTest, ::testing::Values(std::string("sqlite"), std::string("postgres")),
                         store_param_name);

// The list answer written straight from the rows is, byte for byte, the answer written from the
// Creator values of list_creators: every page of every limit, from the start and from cursors,
// for callers who see private fields, who do not, and a signed-in user who owns one of them.
// Fields carry quotes, backslashes, control characters and non-ASCII text; tags that need an
// escape and tags stored by hand in another spelling of the same JSON.
TEST_P(StoreTest, ListTextWrittenFromRowsIsTheListOfCreators) {
  std::mt19937 rng(11);
  const std::vector<std::string> bits = {"a", "Z", " ", "\"", "\\", "\n", "\x01", "é", "日本", "🎨", "/", "<"};
  auto text = [&](size_t max) {
    std::string s;
    for (size_t n = 1 + rng() % max; n > 0; --n) s += bits[rng() % bits.size()];
    return s;
  };
  for (int i = 0; i < 40; ++i) {
    CreatorFields f;
    f.name = "n" + text(6);
    f.handle = "h" + std::to_string(i);
    f.bio = text(12);
    if (i % 3) f.email = std::optional<std::string>("c" + std::to_string(i) + "@example.com");
    std::vector<std::string> tags;
    for (size_t t = rng() % 4; t > 0; --t) tags.push_back(text(4));
    f.tags = tags;
    if (i % 4 == 0) f.owner = "user-" + std::to_string(i);  // one creator per user
    if (i % 5 == 0) f.external_id = std::optional<std::string>("ext-" + text(3));
    auto c = run(store_->create_creator(f));
    ASSERT_TRUE(c) << c.error().message;
  }
  auto gone = run(store_->delete_creator(run(store_->list_creators(PageQuery{}))->items.at(3).id));
  ASSERT_TRUE(gone) << gone.error().message;
  const std::vector<Visibility> callers = {{true, ""}, {false, ""}, {false, "user-8"}};
  for (int limit : {1, 3, 7, 50}) {
    for (const auto& who : callers) {
      std::optional<int64_t> cursor;
      for (int pages = 0; pages < 100; ++pages) {
        PageQuery q;
        q.limit = limit;
        q.before_id = cursor;
        auto page = run(store_->list_creators(q));
        ASSERT_TRUE(page);
        auto direct = run(store_->list_creators_json(q, who));
        ASSERT_TRUE(direct);
        ASSERT_EQ(direct.value(), creators_page_json(page.value(), who)) << "limit " << limit << " page " << pages;
        if (!page->has_more) break;
        cursor = page->items.back().id;
      }
    }
  }
}
