import { Type } from '@sinclair/typebox'

// Payloads of Voximplant account callbacks (research/voximplant.md §2), with the snake_case wire
// names and the types of the wire, not of the SDKs: dates stay strings (the SDKs turn them into
// Date objects). No schema here sets additionalProperties, because Voximplant adds fields without
// notice and a receiver that rejects them would lose callbacks. For the same reason enumerated
// strings are plain strings, with the known values in the description only.

const timestamp = (what: string) => Type.String({ description: `${what}; UTC time, "YYYY-MM-DD HH:mm:ss"` })
const calendarDate = (what: string) => Type.String({ description: `${what}; "YYYY-MM-DD"` })

const SubscriptionDetails = Type.Object({
  type: Type.String({ description: 'What the subscription is attached to: PHONE or SIP_REGISTRATION' }),
  phone_numbers: Type.Optional(Type.Array(Type.Object({
    phone_id: Type.Integer({ description: 'The phone number ID' }),
    phone_number: Type.String({ description: 'The phone number' })
  }, { title: 'SubscriptionCallbackDetailsPhoneNumbers' }), { description: 'The phone numbers, if type is PHONE' })),
  sip_registrations: Type.Optional(Type.Array(Type.Object({
    sip_registration_id: Type.Integer({ description: 'The SIP registration ID' })
  }, { title: 'SubscriptionCallbackDetailsSipRegistrations' }), { description: 'The SIP registrations, if type is SIP_REGISTRATION' }))
}, { title: 'SubscriptionCallbackDetails', description: 'The phone numbers or SIP registrations a subscription is attached to' })

const subscriptionType = Type.String({ description: 'The subscription type: PHONE_NUM, SIP_REGISTRATION, …' })
const subscriptionName = Type.String({ description: 'The subscription description, e.g. the subscribed phone number' })
const subscriptionCost = Type.Number({ description: 'The subscription cost, in the account currency' })
const subscriptionDetails = Type.Array(SubscriptionDetails, { description: 'What the subscription is attached to' })

const paymentFields = {
  transaction_id: Type.Integer({ description: 'The transaction ID' }),
  transaction_type: Type.String({ description: 'The transaction type, e.g. card_payment, robokassa_payment, wire_transfer' }),
  amount: Type.Number({ description: 'The amount, in the account currency' })
}

const reportFields = {
  history_report_id: Type.Integer({ description: 'The history report ID' }),
  success: Type.Boolean({ description: 'Whether the report was built' }),
  order_date: timestamp('When the report was ordered')
}

const CertificateInfo = Type.Object({
  push_credential_id: Type.Integer({ description: 'The push credential ID' }),
  cert_file_name: Type.String({ description: 'The push certificate file name' }),
  expiration_date: Type.Optional(calendarDate('The certificate expiration date')),
  applications: Type.Optional(Type.Array(Type.String(), { description: 'The names of the applications that use it' }))
}, { title: 'CertificateInfo' })

const documentStatuses = 'AWAITING_DOCUMENTS_UPLOADING, AWAITING_AGREEMENT_UPLOADING, AWAITING_VERIFICATION, ' +
  'WAITING_FOR_CONFIRMATION_DOCUMENTS, VERIFIED, REJECTED, WAITING_PERIOD_EXPIRED'
// The deprecated document callbacks document lower-case values with a space; the current one upper case.
const legacyLegalStatus = Type.String({ description: 'The user\'s legal status: \'individual\', \'entrepreneur\', \'legal entity\'' })

const subscriptionsExample = {
  type: 'PHONE_NUM',
  name: '447443332211',
  details: [{ type: 'PHONE', phone_numbers: [{ phone_id: 5501234, phone_number: '447443332211' }] }]
}

/**
 * The payload of each callback type, under the item key named like the type (the payload of a
 * `min_balance` item is `item.min_balance`). The current types come first, then the legacy ones
 * that older accounts may still receive. `transcription_complete`, `sms_inbound`,
 * `phone_number_activation_status_changed` and `new_invoice` are in the documented doubly nested
 * shape (`item.sms_inbound.sms_inbound.sms_body`).
 */
export const voximplantPayloads = {
  min_balance: Type.Object({
    is_min_credit: Type.Boolean({ description: 'Whether the credit threshold (credit_limit - min_balance_to_notify) is exceeded' }),
    is_repeated: Type.Boolean({ description: 'Whether the callback is repeated (the balance is still low); not a delivery retry flag' })
  }, {
    title: 'MinBalanceCallback',
    description: 'The balance reached the minimum to notify about; the balance itself is the item\'s top-level balance and currency',
    examples: [{ is_min_credit: false, is_repeated: false }]
  }),
  account_is_frozen: Type.Object({}, { title: 'AccountIsFrozenCallback', description: 'The account was frozen', examples: [{}] }),
  account_is_unfrozen: Type.Object({}, { title: 'AccountIsUnfrozenCallback', description: 'The account was unfrozen', examples: [{}] }),
  activate_successful: Type.Object({}, { title: 'ActivateSuccessfulCallback', description: 'A new account (not a child account) was created', examples: [{}] }),
  card_expired: Type.Object({}, { title: 'CardExpiredCallback', description: 'A bank card expired', examples: [{}] }),
  card_expires_in_month: Type.Object({}, { title: 'CardExpiresInMonthCallback', description: 'A bank card expires in a month', examples: [{}] }),
  card_payment_failed: Type.Object({}, { title: 'CardPaymentFailedCallback', description: 'A bank card payment failed', examples: [{}] }),
  js_fail: Type.Object({}, { title: 'JSFailCallback', description: 'A JS error occurred in a scenario; sent only if send_js_error is set on the account', examples: [{}] }),
  reset_account_password_request: Type.Object({}, { title: 'ResetAccountPasswordRequestCallback', description: 'A reset of the account password was requested', examples: [{}] }),
  certificate_expired: Type.Object({}, {
    title: 'CertificateExpiredCallback',
    description: '(deprecated) A push certificate expired; replaced by expired_certificates and expiring_certificates',
    deprecated: true,
    examples: [{}]
  }),
  card_payment: Type.Object(paymentFields, {
    title: 'CardPaymentCallback',
    description: 'A bank card payment was made',
    examples: [{ transaction_id: 987654321, transaction_type: 'card_payment', amount: 50 }]
  }),
  robokassa_payment: Type.Object(paymentFields, {
    title: 'RobokassaPaymentCallback',
    description: 'A Robokassa payment was made',
    examples: [{ transaction_id: 987654322, transaction_type: 'robokassa_payment', amount: 1500 }]
  }),
  wire_transfer: Type.Object(paymentFields, {
    title: 'WireTransferCallback',
    description: 'A wire transfer was received',
    examples: [{ transaction_id: 987654323, transaction_type: 'wire_transfer', amount: 500 }]
  }),
  call_history_report: Type.Object(reportFields, {
    title: 'CallHistoryReportCallback',
    description: 'A call history report is ready',
    examples: [{ history_report_id: 123456, success: true, order_date: '2026-11-20 09:30:00' }]
  }),
  transaction_history_report: Type.Object(reportFields, {
    title: 'TransactionHistoryReportCallback',
    description: 'A transaction history report is ready',
    examples: [{ history_report_id: 123457, success: true, order_date: '2026-11-20 09:30:00' }]
  }),
  sip_registration_fail: Type.Object({
    sip_registrations: Type.Array(Type.Object({
      sip_registration_id: Type.Integer({ description: 'The SIP registration ID' }),
      status_code: Type.String({ description: 'The SIP status code of the registration' }),
      error_message: Type.Optional(Type.String({ description: 'The SIP registration error message' }))
    }, { title: 'SIPRegistrationIsFailedCallbackItem' }), { description: 'The failed SIP registrations' })
  }, {
    title: 'SIPRegistrationFailCallback',
    description: 'One or more SIP registrations failed',
    examples: [{ sip_registrations: [{ sip_registration_id: 98765, status_code: '403', error_message: 'Forbidden' }] }]
  }),
  sip_registration_recovered: Type.Object({
    sip_registrations: Type.Array(Type.Object({
      sip_registration_id: Type.Integer({ description: 'The SIP registration ID' })
    }, { title: 'SIPRegistrationIsRecoveredCallbackItem' }), { description: 'The recovered SIP registrations' })
  }, {
    title: 'SIPRegistrationRecoveredCallback',
    description: 'One or more SIP registrations recovered',
    examples: [{ sip_registrations: [{ sip_registration_id: 98765 }] }]
  }),
  renewed_subscriptions: Type.Object({
    subscriptions: Type.Array(Type.Object({
      type: Type.String({ description: 'The subscription type: PHONE_NUM, SIP_REGISTRATION, PLAN, …' }),
      name: subscriptionName,
      cost: subscriptionCost,
      next_renewal: calendarDate('The next renewal date'),
      details: subscriptionDetails
    }, { title: 'RenewedSubscriptionsCallbackItem' }), { description: 'The renewed subscriptions' })
  }, {
    title: 'RenewedSubscriptionsCallback',
    description: 'Subscriptions were renewed',
    examples: [{ subscriptions: [{ ...subscriptionsExample, cost: 1.5, next_renewal: '2026-12-20' }] }]
  }),
  subscription_is_frozen: Type.Object({
    subscriptions: Type.Array(Type.Object({
      type: subscriptionType,
      name: subscriptionName,
      cost: subscriptionCost,
      details: subscriptionDetails
    }, { title: 'SubscriptionIsFrozenCallbackItem' }), { description: 'The frozen subscriptions' })
  }, {
    title: 'SubscriptionIsFrozenCallback',
    description: 'Subscriptions were frozen',
    examples: [{ subscriptions: [{ ...subscriptionsExample, cost: 1.5 }] }]
  }),
  subscription_is_detached: Type.Object({
    subscriptions: Type.Array(Type.Object({
      type: subscriptionType,
      name: subscriptionName,
      details: subscriptionDetails
    }, { title: 'SubscriptionIsDetachedCallbackItem' }), { description: 'The cancelled subscriptions' })
  }, {
    title: 'SubscriptionIsDetachedCallback',
    description: 'Subscriptions were cancelled',
    examples: [{ subscriptions: [subscriptionsExample] }]
  }),
  unverified_subscription_detached: Type.Object({
    subscriptions: Type.Array(Type.Object({
      type: subscriptionType,
      name: subscriptionName,
      details: subscriptionDetails
    }, { title: 'UnverifiedSubscriptionDetachedCallbackItem' }), { description: 'The cancelled unverified subscriptions' })
  }, {
    title: 'UnverifiedSubscriptionDetachedCallback',
    description: 'Unverified subscriptions were cancelled',
    examples: [{ subscriptions: [subscriptionsExample] }]
  }),
  expiring_callerid: Type.Object({
    callerids: Type.Array(Type.String(), { description: 'The expiring caller IDs' }),
    expiration_date: calendarDate('When the caller IDs expire')
  }, {
    title: 'ExpiringCallerIDCallback',
    description: 'Caller IDs are about to expire',
    examples: [{ callerids: ['447443332211'], expiration_date: '2026-12-01' }]
  }),
  transcription_complete: Type.Object({
    transcription_complete: Type.Object({
      record_url: Type.String({ description: 'The URL of the record' }),
      transcription_url: Type.String({ description: 'The URL of the transcription; open it with authorization parameters and record_id added' }),
      call_session_history_id: Type.Integer({ description: 'The call session history ID' }),
      transcription_cost: Type.Number({ description: 'The cost of the transcription' })
    }, { title: 'TranscriptionCompleteCallbackItem', description: 'The transcription' })
  }, {
    title: 'TranscriptionCompleteCallback',
    description: 'A transcription was saved',
    examples: [{
      transcription_complete: {
        record_url: 'https://storage-gw-us-01.voximplant.com/voximplant-records/2026/11/20/record.mp3',
        transcription_url: 'https://api.voximplant.com/platform_api/GetRecordTranscription/?record_id=456789',
        call_session_history_id: 2345678901,
        transcription_cost: 0.05
      }
    }]
  }),
  sms_inbound: Type.Object({
    sms_inbound: Type.Object({
      source_number: Type.Optional(Type.String({ description: 'The sender\'s phone number' })),
      destination_number: Type.Optional(Type.String({ description: 'The account\'s phone number that received the SMS' })),
      sms_body: Type.Optional(Type.String({ description: 'The message text' }))
    }, { title: 'InboundSmsCallbackItem', description: 'The incoming SMS' })
  }, {
    title: 'InboundSmsCallback',
    description: 'An SMS was received on one of the account\'s phone numbers',
    examples: [{ sms_inbound: { source_number: '447443332212', destination_number: '447443332211', sms_body: 'Hello' } }]
  }),
  phone_number_activation_status_changed: Type.Object({
    phone_number_activation_status_changed: Type.Object({
      phone_number: Type.String({ description: 'The phone number whose status changed' }),
      activation_status: Type.String({ description: 'The new activation status' })
    }, { title: 'PhoneNumberActivationStatusChangedCallbackItem', description: 'The phone number and its new status' })
  }, {
    title: 'PhoneNumberActivationStatusChangedCallback',
    description: 'A rented phone number changed its activation status',
    examples: [{ phone_number_activation_status_changed: { phone_number: '447443332211', activation_status: 'ACTIVE' } }]
  }),
  expiring_agreement: Type.Object({
    expiration_date: calendarDate('When the confirmation documents waiting period expires'),
    until_expiration: Type.Integer({ description: 'Days left until then: 20, 15, 10, 5 or 1' })
  }, {
    title: 'ExpiringAgreementCallback',
    description: 'The confirmation documents waiting period expires in 20, 15, 10, 5 or 1 days',
    examples: [{ expiration_date: '2026-12-10', until_expiration: 20 }]
  }),
  expired_agreement: Type.Object({
    document_ids: Type.Array(Type.Integer(), { description: 'The IDs of the expired agreements' })
  }, {
    title: 'ExpiredAgreementCallback',
    description: 'The confirmation documents waiting period has expired or expires today',
    examples: [{ document_ids: [34567, 34568] }]
  }),
  restored_agreement_status: Type.Object({
    document_id: Type.Integer({ description: 'The ID of the agreement document whose status changed' }),
    expiration_date: calendarDate('The new expiration date of the agreement')
  }, {
    title: 'RestoredAgreementStatusCallback',
    description: 'The expiration date of the confirmation documents waiting period changed',
    examples: [{ document_id: 34567, expiration_date: '2027-01-15' }]
  }),
  next_charge_alert: Type.Object({
    required_money: Type.Number({ description: 'The price of all subscription plans to be renewed on the 1st of the month, in the account currency' }),
    insufficient_funds_amount: Type.Number({ description: 'The money missing to renew them, in the account currency' })
  }, {
    title: 'NextChargeAlertCallback',
    description: 'Plans are to be renewed in 3 days but the balance is not enough',
    examples: [{ required_money: 120, insufficient_funds_amount: 65.8 }]
  }),
  expired_certificates: Type.Object({
    certificates: Type.Array(CertificateInfo, { description: 'The expired certificates' })
  }, {
    title: 'ExpiredCertificateCallback',
    description: 'Apple VoIP push certificates expired',
    examples: [{ certificates: [{ push_credential_id: 4321, cert_file_name: 'voip_services.p12', expiration_date: '2026-11-19', applications: ['myapp'] }] }]
  }),
  expiring_certificates: Type.Object({
    certificates: Type.Array(CertificateInfo, { description: 'The expiring certificates' })
  }, {
    title: 'ExpiringCertificateCallback',
    description: 'Apple VoIP push certificates expire in 14 days or fewer',
    examples: [{ certificates: [{ push_credential_id: 4321, cert_file_name: 'voip_services.p12', expiration_date: '2026-12-01', applications: ['myapp'] }] }]
  }),
  account_document_status_updated: Type.Object({
    account_document_id: Type.Integer({ description: 'The uploaded document ID' }),
    previous_account_document_status: Type.String({ description: `The previous verification status: ${documentStatuses}, …` }),
    account_document_status: Type.String({ description: `The verification status: ${documentStatuses}, …` }),
    update_time: timestamp('When the status changed'),
    comment: Type.Optional(Type.String({ description: 'The reviewer\'s comment' })),
    legal_status: Type.String({ description: 'The user\'s legal status: INDIVIDUAL, ENTREPRENEUR, LEGAL_ENTITY, …' })
  }, {
    title: 'AccountDocumentStatusUpdatedCallback',
    description: 'The verification status of the account documents changed',
    examples: [{
      account_document_id: 76543,
      previous_account_document_status: 'AWAITING_VERIFICATION',
      account_document_status: 'VERIFIED',
      update_time: '2026-11-20 09:30:00',
      legal_status: 'LEGAL_ENTITY'
    }]
  }),
  account_document_uploaded: Type.Object({
    account_document_id: Type.Integer({ description: 'The uploaded document ID' }),
    uploaded: timestamp('When the document was uploaded'),
    verification_name: Type.String({ description: 'The verification name (type)' }),
    legal_status: legacyLegalStatus
  }, {
    title: 'AccountDocumentUploadedCallback',
    description: '(deprecated) An account document was uploaded; replaced by account_document_status_updated',
    deprecated: true,
    examples: [{ account_document_id: 76543, uploaded: '2026-11-20 09:30:00', verification_name: 'Verification of the company', legal_status: 'legal entity' }]
  }),
  account_document_verified: Type.Object({
    account_document_id: Type.Integer({ description: 'The uploaded document ID' }),
    account_document_status: Type.String({ description: `The verification status: ${documentStatuses}, …` }),
    uploaded: timestamp('When the document was uploaded'),
    comment: Type.Optional(Type.String({ description: 'The reviewer\'s comment' })),
    verification_name: Type.String({ description: 'The verification name (type)' }),
    legal_status: legacyLegalStatus
  }, {
    title: 'AccountDocumentVerifiedCallback',
    description: '(deprecated) An account document was verified; replaced by account_document_status_updated',
    deprecated: true,
    examples: [{
      account_document_id: 76543,
      account_document_status: 'VERIFIED',
      uploaded: '2026-11-20 09:30:00',
      verification_name: 'Verification of the company',
      legal_status: 'legal entity'
    }]
  }),
  regulation_address_uploaded: Type.Object({
    regulation_address_id: Type.Integer({ description: 'The uploaded proof of address ID' }),
    uploaded: timestamp('When it was uploaded'),
    is_individual: Type.Boolean({ description: 'Whether the account belongs to an individual' }),
    regulation_address_name: Type.String({ description: 'The regulation address name' })
  }, {
    title: 'RegulationAddressUploadedCallback',
    description: 'A proof of address was uploaded',
    examples: [{ regulation_address_id: 23456, uploaded: '2026-11-20 09:30:00', is_individual: false, regulation_address_name: 'London office' }]
  }),
  regulation_address_verified: Type.Object({
    regulation_address_id: Type.Integer({ description: 'The uploaded proof of address ID' }),
    regulation_address_status: Type.String({ description: 'The verification status: VERIFIED, DECLINED, …' }),
    uploaded: timestamp('When it was uploaded'),
    is_individual: Type.Boolean({ description: 'Whether the account belongs to an individual' }),
    comment: Type.Optional(Type.String({ description: 'The reviewer\'s comment' })),
    regulation_address_name: Type.String({ description: 'The regulation address name' })
  }, {
    title: 'RegulationAddressVerifiedCallback',
    description: 'A proof of address was verified',
    examples: [{
      regulation_address_id: 23456,
      regulation_address_status: 'VERIFIED',
      uploaded: '2026-11-20 09:30:00',
      is_individual: false,
      regulation_address_name: 'London office'
    }]
  }),
  regulation_address_documents_requested: Type.Object({
    regulation_address_id: Type.Integer({ description: 'The uploaded proof of address ID' }),
    regulation_address_name: Type.String({ description: 'The regulation address name' }),
    regulation_address_status: Type.String({ description: 'The verification status: IN_PROGRESS, VERIFIED, DECLINED, PENDING, …' }),
    update_time: timestamp('When the status changed'),
    is_individual: Type.Boolean({ description: 'Whether the account belongs to an individual' }),
    comment: Type.Optional(Type.String({ description: 'The reviewer\'s comment' }))
  }, {
    title: 'RegulationAddressDocumentsRequestedCallback',
    description: 'The verification status of a proof of address changed to PENDING: documents are requested',
    examples: [{
      regulation_address_id: 23456,
      regulation_address_name: 'London office',
      regulation_address_status: 'PENDING',
      update_time: '2026-11-20 09:30:00',
      is_individual: false,
      comment: 'Please upload a utility bill'
    }]
  }),
  a2p_sms_activated: Type.Object({
    a2p_enabled: Type.Boolean({ description: 'Whether A2P messages are allowed' })
  }, {
    title: 'A2PActivatedCallback',
    description: 'A2P SMS were activated',
    examples: [{ a2p_enabled: true }]
  }),
  invoice_received: Type.Object({
    invoice_id: Type.Integer({ description: 'The invoice ID' }),
    invoice_date: timestamp('When the invoice was created'),
    receival_date: timestamp('When the invoice was received'),
    // Every SDK has the money values as strings, so they stay strings rather than risk a rejection.
    amount: Type.String({ description: 'The invoice amount excluding taxes, as a decimal string' }),
    tax_amount: Type.String({ description: 'The tax amount, as a decimal string' }),
    currency: Type.String({ description: 'The invoice currency' })
  }, {
    title: 'InvoiceReceivedCallback',
    description: 'A monthly invoice was sent',
    examples: [{
      invoice_id: 112233,
      invoice_date: '2026-11-01 00:00:00',
      receival_date: '2026-11-01 09:30:00',
      amount: '120.00',
      tax_amount: '24.00',
      currency: 'USD'
    }]
  }),
  batch_task_cancelling_completed: Type.Object({
    // Documented as a number but described as "Batch UUID": which one arrives is unconfirmed.
    batch_id: Type.Optional(Type.Union([Type.Integer(), Type.String()], { description: 'The batch of the cancelled tasks (a number per the docs, described as a UUID)' })),
    cancelled_tasks_number: Type.Optional(Type.Integer({ description: 'The number of cancelled tasks' }))
  }, {
    title: 'BatchTaskCancellingCallback',
    description: 'Cancelling the tasks of a batch completed',
    examples: [{ batch_id: 4567, cancelled_tasks_number: 25 }]
  }),

  // Legacy types, gone from the current docs (research §2.2).
  stagnant_account: Type.Object({}, {
    title: 'StagnantAccountCallback',
    description: '(legacy) The account is stagnant (inactive); the exact trigger is undocumented',
    deprecated: true,
    examples: [{}]
  }),
  balance_is_changed: Type.Object({}, {
    title: 'BalanceIsChanged',
    description: '(legacy) The account balance changed; the new balance is the item\'s top-level balance',
    deprecated: true,
    examples: [{}]
  }),
  plan_config: Type.Object({
    plan_type: Type.String({ description: 'The plan type: IM, MAU, …' }),
    plan_name: Type.String({ description: 'The plan name' }),
    packages: Type.Array(Type.Object({
      price_group_id: Type.Array(Type.Integer(), { description: 'The price group IDs' }),
      package_name: Type.Optional(Type.String({ description: 'The package name' })),
      package_uuid: Type.String({ description: 'The package UUID' }),
      may_overrun: Type.Boolean({ description: 'Whether overrun is enabled' }),
      package_size: Type.Number({ description: 'The current package size, including overrun' })
    }, { title: 'PlanPackageConfig' }), { description: 'The packages of the account plan' })
  }, {
    title: 'PlanConfigCallback',
    description: '(legacy) The configuration of the account\'s IM or MAU plan',
    deprecated: true,
    examples: [{
      plan_type: 'MAU',
      plan_name: 'MAU 1000',
      packages: [{ price_group_id: [12, 13], package_name: 'Users', package_uuid: '3f2b8c1e-5d4a-4f6b-9a7c-2e1d0b9a8c7f', may_overrun: true, package_size: 1000 }]
    }]
  }),
  new_invoice: Type.Object({
    new_invoice: Type.Object({
      invoice_number: Type.String({ description: 'The unique invoice number' }),
      // The SDKs never parsed this one as a date, so its format is unknown.
      invoice_date: Type.String({ description: 'The invoice date (format undocumented)' }),
      prepayment: Type.Boolean({ description: 'Whether it is a prepayment' }),
      currency: Type.String({ description: 'The invoice currency' }),
      total_amount: Type.Number({ description: 'The total amount, including taxes' }),
      total_tax_amount: Type.Number({ description: 'The total amount of taxes' }),
      units: Type.Array(Type.Object({
        description: Type.String({ description: 'The service name' }),
        amount: Type.Optional(Type.Number({ description: 'The service fee, excluding taxes' })),
        vat_rate: Type.Number({ description: 'The tax rate, from 0 to 1' }),
        tax_amount: Type.Number({ description: 'The tax amount' })
      }, { title: 'InvoiceUnits' }), { description: 'The services provided' })
    }, { title: 'NewInvoiceCallbackItem', description: 'The invoice' })
  }, {
    title: 'NewInvoiceCallback',
    description: '(legacy) A new invoice was issued',
    deprecated: true,
    examples: [{
      new_invoice: {
        invoice_number: 'INV-2026-11-0042',
        invoice_date: '2026-11-01',
        prepayment: false,
        currency: 'USD',
        total_amount: 144,
        total_tax_amount: 24,
        units: [{ description: 'Phone number rental', amount: 120, vat_rate: 0.2, tax_amount: 24 }]
      }
    }]
  }),
  expired_callerid: Type.Object({
    callerids: Type.Array(Type.String(), { description: 'The expired caller IDs' })
  }, {
    title: 'ExpiredCallerIDCallback',
    description: '(legacy) Caller IDs expired',
    deprecated: true,
    examples: [{ callerids: ['447443332211'] }]
  })
}

export type VoximplantCallbackType = keyof typeof voximplantPayloads
