#include "identity.h"

#include <gtest/gtest.h>

#include "support/result_matchers.h"

namespace ijazat::appliance {
namespace {

using ::testing::HasSubstr;

TEST(ParseCnic, AcceptsTheWrittenForms) {
  for (const char* text :
       {"3520212345671", "35202-1234567-1", " 35202 1234567 1 ", "35202 - 1234567 - 1"}) {
    EXPECT_THAT(ParseCnic(text), IsOkAndHolds(std::string("3520212345671"))) << text;
  }
}

TEST(ParseCnic, RejectsEverythingElse) {
  for (const char* text :
       {"", "352021234567", "35202123456712", "3520-21234567-1", "35202-1234567-12",
        "35202_1234567_1", "3520212345671x", "٣٥٢٠٢١٢٣٤٥٦٧١", "35202--1234567-1"}) {
    EXPECT_THAT(ParseCnic(text), HasReason("invalid_cnic")) << text;
  }
  EXPECT_THAT(ParseCnic(std::string(1000, '1')), HasReason("invalid_cnic"));
}

TEST(FindCnicInSms, FindsACnicAloneOrAfterTheWordCnic) {
  EXPECT_EQ(FindCnicInSms("3520212345671"), "3520212345671");
  EXPECT_EQ(FindCnicInSms("cnic 35202-1234567-1"), "3520212345671");
  EXPECT_EQ(FindCnicInSms("CNIC: 35202 1234567 1\n"), "3520212345671");
  EXPECT_FALSE(FindCnicInSms("REVOKE K7Q2-M9XD").has_value());
  EXPECT_FALSE(FindCnicInSms("my cnic is 3520212345671").has_value());
  EXPECT_FALSE(FindCnicInSms("").has_value());
}

TEST(NormalizeMsisdn, AcceptsPakistaniMobileForms) {
  for (const char* text : {"03001234567", "3001234567", "923001234567", "+923001234567",
                           "+92 300 1234567", "0092-300-1234567", "(0300) 1234567"}) {
    EXPECT_THAT(NormalizeMsisdn(text), IsOkAndHolds(std::string("+923001234567"))) << text;
  }
}

TEST(NormalizeMsisdn, RejectsLandlinesForeignAndJunk) {
  for (const char* text : {"", "0512345678", "+442071234567", "+92512345678", "030012345678",
                           "0300123456", "+92300123456a", "++923001234567", "92-300"}) {
    EXPECT_THAT(NormalizeMsisdn(text), HasReason("invalid_msisdn")) << text;
  }
}

TEST(NormalizeMsisdn, NarrowedRanges_AcceptOnlyThoseNetworks) {
  NumberPlan plan;
  plan.ranges = {"+92300", "+92301"};
  EXPECT_THAT(NormalizeMsisdn("0301 7654321", plan), IsOkAndHolds(std::string("+923017654321")));
  EXPECT_THAT(NormalizeMsisdn("0345 1234567", plan), HasReason("invalid_msisdn"));
  const auto refused = NormalizeMsisdn("0345 1234567", plan);
  EXPECT_THAT(refused.error().message(), HasSubstr("+92300, +92301"));
}

TEST(NormalizeMsisdn, AnotherCountrysPlan_NormalisesItsWrittenForms) {
  NumberPlan uk;
  uk.country_code = "44";
  uk.national_digits = 10;
  uk.ranges = {"+447"};
  for (const char* text : {"07700 900123", "+44 7700 900123", "0044-7700-900123", "447700900123"}) {
    EXPECT_THAT(NormalizeMsisdn(text, uk), IsOkAndHolds(std::string("+447700900123"))) << text;
  }
  EXPECT_THAT(NormalizeMsisdn("020 7946 0123", uk), HasReason("invalid_msisdn"));
  EXPECT_THAT(NormalizeMsisdn("03001234567", uk), HasReason("invalid_msisdn"));
}

TEST(ValidateNumberPlan, RefusesPlansThatCannotBeE164) {
  EXPECT_THAT(ValidateNumberPlan(NumberPlan{}), IsOk());
  const std::vector<NumberPlan> bad = {
      {"", 10, {"+923"}},    {"0092", 10, {"+923"}},
      {"9a", 10, {"+923"}},  {"92", 3, {"+923"}},
      {"92", 14, {"+923"}},  {"92", 10, {}},
      {"92", 10, {"923"}},   {"92", 10, {"+443"}},
      {"92", 10, {"+92 3"}}, {"92", 10, {"+92300123456789"}},
  };
  for (const NumberPlan& plan : bad) {
    EXPECT_THAT(ValidateNumberPlan(plan), HasReason("invalid_number_plan"))
        << plan.country_code << " " << plan.national_digits << " "
        << (plan.ranges.empty() ? "-" : plan.ranges[0]);
  }
}

TEST(Masking, HidesTheMiddle) {
  EXPECT_EQ(MaskCnic("3520212345671"), "35202-*******-1");
  EXPECT_EQ(MaskMsisdn("+923001234567"), "+92300*****67");
}

TEST(ParseInboundSms, ReadsTheSenderAndACnic) {
  const auto sms = ParseInboundSms("0300-1234567", "8009", "8009", "CNIC: 35202-1234567-1");
  ASSERT_TRUE(sms.ok());
  EXPECT_EQ(sms->from, "+923001234567");
  EXPECT_EQ(sms->cnic, "3520212345671");
  EXPECT_EQ(sms->verb, "");
  EXPECT_EQ(sms->argument, "");
}

TEST(ParseInboundSms, ReadsACommandWordAndFoldsItsArgument) {
  const auto sms = ParseInboundSms("+923001234567", "8009", "8009", " \trevoke   k7q2-m9xd \r\n");
  ASSERT_TRUE(sms.ok());
  EXPECT_FALSE(sms->cnic.has_value());
  EXPECT_EQ(sms->verb, "REVOKE");
  EXPECT_EQ(sms->argument, "k7q2-m9xd");
  const auto block = ParseInboundSms("03001234567", "8009", "8009", "block Demo\t\tBank");
  ASSERT_TRUE(block.ok());
  EXPECT_EQ(block->verb, "BLOCK");
  EXPECT_EQ(block->argument, "Demo Bank");
  const auto empty = ParseInboundSms("03001234567", "8009", "8009", " ");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->verb, "");
  EXPECT_EQ(empty->argument, "");
}

TEST(ParseInboundSms, RefusesBadSendersOtherNumbersAndLongTexts) {
  EXPECT_THAT(ParseInboundSms("0421234567", "8009", "8009", "HELP"), HasReason("invalid_msisdn"));
  EXPECT_THAT(ParseInboundSms("03001234567", "80090", "8009", "HELP"),
              HasReason("wrong_short_code"));
  EXPECT_THAT(ParseInboundSms("03001234567", "8009", "8009", std::string(641, 'x')),
              HasReason("sms_too_long"));
  EXPECT_TRUE(ParseInboundSms("03001234567", "8009", "8009", std::string(640, 'x')).ok());
}

}  // namespace
}  // namespace ijazat::appliance
