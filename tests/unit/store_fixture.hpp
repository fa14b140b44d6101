// Store tests run twice: on SQLite, and on PostgreSQL when CREATORD_TEST_POSTGRES_URL names a
// server (make test starts one); each test gets a fresh database or folder.
#pragma once
#include <libpq-fe.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "store/pg/pg_store.hpp"
#include "store/sqlite/sqlite_store.hpp"

class StoreFixture : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (auto& ch : test)  // a plain lower-case identifier (PostgreSQL folds unquoted names)
      ch = std::isalnum(static_cast<unsigned char>(ch)) ? static_cast<char>(std::tolower(static_cast<unsigned char>(ch))) : '_';
    name_ = "st_" + std::to_string(::getpid()) + "_" + test;
    if (GetParam() == "postgres") {
      const char* admin = std::getenv("CREATORD_TEST_POSTGRES_URL");
      if (!admin) GTEST_SKIP() << "CREATORD_TEST_POSTGRES_URL is not set (make test sets it)";
      admin_ = admin;
      name_ = name_.substr(0, 60);
      admin_exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
      admin_exec("CREATE DATABASE " + name_);
    } else {
      dir_ = std::filesystem::path(::testing::TempDir()) / name_;
      std::filesystem::remove_all(dir_);
      std::filesystem::create_directories(dir_);
    }
    reopen();
  }
  void TearDown() override {
    if (owner_) owner_->close();
    owner_.reset();
    if (!admin_.empty()) admin_exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  // (Re)opens the store on the same data.
  void reopen() {
    if (owner_) owner_->close();
    owner_.reset();
    if (GetParam() == "postgres") {
      auto s = creatord::PgStore::open(creatord::PgOptions{admin_.substr(0, admin_.rfind('/')) + "/" + name_, 10,
                                                           std::chrono::seconds(10)});
      ASSERT_TRUE(s) << s.error().message;
      stores_ = s.value().get();
      driver_ = s.value().get();
      owner_ = std::move(s.value());
    } else {
      creatord::SqliteOptions o;
      o.path = (dir_ / "t.db").string();
      o.synchronous = "NORMAL";
      auto s = creatord::SqliteStore::open(o);
      ASSERT_TRUE(s) << s.error().message;
      stores_ = s.value().get();
      driver_ = s.value().get();
      owner_ = std::move(s.value());
    }
  }
  void admin_exec(const std::string& sql) {
    PGconn* c = PQconnectdb(admin_.c_str());
    PQclear(PQexec(c, sql.c_str()));
    PQfinish(c);
  }

  std::unique_ptr<creatord::Store> owner_;
  creatord::Store* stores_ = nullptr;
  creatord::queue::Driver* driver_ = nullptr;
  std::string admin_, name_;
  std::filesystem::path dir_;
};

inline std::string store_param_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }
