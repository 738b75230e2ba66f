// The research's three example bodies with their precomputed hashes (research/voximplant.md §6),
// copied as they stand there: a test that edits them would not prove what the research computed.
const account = {
  account_id: 1234567,
  account_name: 'myaccount',
  account_email: 'dev@example.com',
  language_code: 'en',
  account_first_name: 'John',
  account_last_name: 'Doe'
}

/** §6.1: salt "mySecretSalt". */
export const singleMinBalance = {
  callbacks: [
    { callback_id: 58210, type: 'min_balance', hash: '50cf9f7ae7e7e4b186099fa3d8262c9b', ...account, balance: 4.2, currency: 'USD', min_balance: { is_min_credit: false, is_repeated: false } }
  ]
}

/** §6.2: salt "mySecretSalt"; sms_inbound nested twice, as the docs and SDKs have it. */
export const cardPaymentAndSms = {
  callbacks: [
    { callback_id: 58211, type: 'card_payment', hash: 'dc263fe755edc0d5238311221597dfd4', ...account, balance: 54.2, currency: 'USD', card_payment: { transaction_id: 987654321, transaction_type: 'card_payment', amount: 50 } },
    { callback_id: 58212, type: 'sms_inbound', hash: '9abad26250de42109bf22fc43a383806', ...account, balance: 54.19, currency: 'USD', sms_inbound: { sms_inbound: { source_number: '447443332212', destination_number: '447443332211', sms_body: 'Hello' } } }
  ]
}

/** §6.3: no salt, so the hash is md5("" + account_id + api_key + callback_id). */
export const unsaltedFrozen = {
  callbacks: [
    { callback_id: 58213, type: 'account_is_frozen', hash: '65ff51c8487b491c35665e0382b9de72', ...account, balance: -0.35, currency: 'USD', account_is_frozen: {} }
  ]
}
