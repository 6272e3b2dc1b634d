/* wrappers.h - generated once from p11-kit's pkcs11.h: one forwarding
 * wrapper per PKCS#11 v2.40 function, each asking fault() first; edited by
 * hand for attribute faults (C_CreateObject, C_GetAttributeValue,
 * C_SetAttributeValue), init arguments (C_Initialize), the slot count
 * (C_GetSlotList), the strict, hidden-PSS, key-wrap, signing and
 * private-certificate modes and the outage (session bookkeeping, signature
 * counting). */

static CK_RV w_C_Initialize(void *init_args)
{
	CK_C_INITIALIZE_ARGS copy;
	CK_RV rv;

	if (host_fault("C_Initialize", &rv))
		return rv;
	rv = real->C_Initialize(take_init_args(init_args, &copy));
	return rv;
}

static CK_RV w_C_Finalize(void *reserved)
{
	CK_RV rv;

	if (host_fault("C_Finalize", &rv))
		return rv;
	rv = real->C_Finalize(reserved);
	forget_sessions();
	return rv;
}

static CK_RV w_C_GetInfo(CK_INFO *info)
{
	CK_RV rv;

	if (host_fault("C_GetInfo", &rv))
		return rv;
	rv = real->C_GetInfo(info);
	return rv;
}

static CK_RV w_C_GetSlotList(unsigned char token_present, CK_SLOT_ID *slot_list, unsigned long *count)
{
	CK_RV rv;

	if (host_fault("C_GetSlotList", &rv))
		return rv;
	rv = real->C_GetSlotList(token_present, slot_list, count);
	if (rv == CKR_OK && !slot_list)
		hide_a_slot(count);
	return rv;
}

static CK_RV w_C_GetSlotInfo(CK_SLOT_ID slot_id, CK_SLOT_INFO *info)
{
	CK_RV rv;

	if (host_fault("C_GetSlotInfo", &rv))
		return rv;
	rv = real->C_GetSlotInfo(slot_id, info);
	return rv;
}

static CK_RV w_C_GetTokenInfo(CK_SLOT_ID slot_id, CK_TOKEN_INFO *info)
{
	CK_RV rv;

	if (host_fault("C_GetTokenInfo", &rv))
		return rv;
	rv = real->C_GetTokenInfo(slot_id, info);
	if (rv == CKR_OK)
		info->flags |= extra_token_flags;
	return rv;
}

static CK_RV w_C_GetMechanismList(CK_SLOT_ID slot_id, CK_MECHANISM_TYPE *mechanism_list, unsigned long *count)
{
	CK_RV rv;

	if (host_fault("C_GetMechanismList", &rv))
		return rv;
	if (hide_pss || kwp)
		return adjusted_mechanism_list(slot_id, mechanism_list, count);
	rv = real->C_GetMechanismList(slot_id, mechanism_list, count);
	return rv;
}

static CK_RV w_C_GetMechanismInfo(CK_SLOT_ID slot_id, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO *info)
{
	CK_RV rv;

	if (host_fault("C_GetMechanismInfo", &rv))
		return rv;
	if (hidden_mechanism(type))
		return CKR_MECHANISM_INVALID;
	if (kwp && type == CKM_AES_KEY_WRAP_KWP)
		type = CKM_AES_KEY_WRAP_PAD;
	rv = real->C_GetMechanismInfo(slot_id, type, info);
	return rv;
}

static CK_RV w_C_InitToken(CK_SLOT_ID slot_id, unsigned char *pin, unsigned long pin_len, unsigned char *label)
{
	CK_RV rv;

	if (host_fault("C_InitToken", &rv))
		return rv;
	rv = real->C_InitToken(slot_id, pin, pin_len, label);
	return rv;
}

static CK_RV w_C_InitPIN(CK_SESSION_HANDLE session, unsigned char *pin, unsigned long pin_len)
{
	CK_RV rv;

	if (session_fault("C_InitPIN", session, &rv))
		return rv;
	rv = real->C_InitPIN(session, pin, pin_len);
	return rv;
}

static CK_RV w_C_SetPIN(CK_SESSION_HANDLE session, unsigned char *old_pin, unsigned long old_len, unsigned char *new_pin, unsigned long new_len)
{
	CK_RV rv;

	if (session_fault("C_SetPIN", session, &rv))
		return rv;
	rv = real->C_SetPIN(session, old_pin, old_len, new_pin, new_len);
	return rv;
}

static CK_RV w_C_OpenSession(CK_SLOT_ID slot_id, CK_FLAGS flags, void *application, CK_NOTIFY notify, CK_SESSION_HANDLE *session)
{
	CK_RV rv;

	if (host_fault("C_OpenSession", &rv))
		return rv;
	rv = real->C_OpenSession(slot_id, flags, application, notify, session);
	if (rv == CKR_OK)
		session_opened(*session);
	return rv;
}

static CK_RV w_C_CloseSession(CK_SESSION_HANDLE session)
{
	CK_RV rv;

	if (session_fault("C_CloseSession", session, &rv))
		return rv;
	rv = real->C_CloseSession(session);
	session_closed(session);
	return rv;
}

static CK_RV w_C_CloseAllSessions(CK_SLOT_ID slot_id)
{
	CK_RV rv;

	if (host_fault("C_CloseAllSessions", &rv))
		return rv;
	rv = real->C_CloseAllSessions(slot_id);
	forget_sessions();
	return rv;
}

static CK_RV w_C_GetSessionInfo(CK_SESSION_HANDLE session, CK_SESSION_INFO *info)
{
	CK_RV rv;

	if (session_fault("C_GetSessionInfo", session, &rv))
		return rv;
	rv = real->C_GetSessionInfo(session, info);
	return rv;
}

static CK_RV w_C_GetOperationState(CK_SESSION_HANDLE session, unsigned char *operation_state, unsigned long *operation_state_len)
{
	CK_RV rv;

	if (session_fault("C_GetOperationState", session, &rv))
		return rv;
	rv = real->C_GetOperationState(session, operation_state, operation_state_len);
	return rv;
}

static CK_RV w_C_SetOperationState(CK_SESSION_HANDLE session, unsigned char *operation_state, unsigned long operation_state_len, CK_OBJECT_HANDLE encryption_key, CK_OBJECT_HANDLE authentiation_key)
{
	CK_RV rv;

	if (session_fault("C_SetOperationState", session, &rv))
		return rv;
	rv = real->C_SetOperationState(session, operation_state, operation_state_len, encryption_key, authentiation_key);
	return rv;
}

static CK_RV w_C_Login(CK_SESSION_HANDLE session, CK_USER_TYPE user_type, unsigned char *pin, unsigned long pin_len)
{
	CK_RV rv;

	if (session_fault("C_Login", session, &rv))
		return rv;
	rv = real->C_Login(session, user_type, pin, pin_len);
	return rv;
}

static CK_RV w_C_Logout(CK_SESSION_HANDLE session)
{
	CK_RV rv;

	if (session_fault("C_Logout", session, &rv))
		return rv;
	rv = real->C_Logout(session);
	return rv;
}

static CK_RV w_C_CreateObject(CK_SESSION_HANDLE session, CK_ATTRIBUTE *templ, unsigned long count, CK_OBJECT_HANDLE *object)
{
	CK_RV rv;

	if (session_fault("C_CreateObject", session, &rv) || attr_fault(&create_attr, session, CK_INVALID_HANDLE, templ, count, &rv) ||
	    strict_refuses(templ, count, &rv))
		return rv;
	rv = real->C_CreateObject(session, templ, count, object);
	return rv;
}

static CK_RV w_C_CopyObject(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE *templ, unsigned long count, CK_OBJECT_HANDLE *new_object)
{
	CK_RV rv;

	if (session_fault("C_CopyObject", session, &rv))
		return rv;
	rv = real->C_CopyObject(session, object, templ, count, new_object);
	return rv;
}

static CK_RV w_C_DestroyObject(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object)
{
	CK_RV rv;

	if (session_fault("C_DestroyObject", session, &rv))
		return rv;
	rv = real->C_DestroyObject(session, object);
	return rv;
}

static CK_RV w_C_GetObjectSize(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, unsigned long *size)
{
	CK_RV rv;

	if (session_fault("C_GetObjectSize", session, &rv))
		return rv;
	rv = real->C_GetObjectSize(session, object, size);
	return rv;
}

static CK_RV w_C_GetAttributeValue(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE *templ, unsigned long count)
{
	CK_RV rv;

	if (session_fault("C_GetAttributeValue", session, &rv) || attr_fault(&read_attr, session, object, templ, count, &rv))
		return rv;
	rv = real->C_GetAttributeValue(session, object, templ, count);
	return rv;
}

static CK_RV w_C_SetAttributeValue(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE *templ, unsigned long count)
{
	CK_RV rv;

	if (session_fault("C_SetAttributeValue", session, &rv) || attr_fault(&set_attr, session, object, templ, count, &rv))
		return rv;
	rv = real->C_SetAttributeValue(session, object, templ, count);
	return rv;
}

static CK_RV w_C_FindObjectsInit(CK_SESSION_HANDLE session, CK_ATTRIBUTE *templ, unsigned long count)
{
	CK_RV rv;

	if (session_fault("C_FindObjectsInit", session, &rv))
		return rv;
	rv = real->C_FindObjectsInit(session, templ, count);
	return rv;
}

static CK_RV w_C_FindObjects(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE *object, unsigned long max_object_count, unsigned long *object_count)
{
	CK_RV rv;

	if (session_fault("C_FindObjects", session, &rv))
		return rv;
	if (private_certs)
		return find_objects_hiding_certs(session, object, max_object_count, object_count);
	rv = real->C_FindObjects(session, object, max_object_count, object_count);
	return rv;
}

static CK_RV w_C_FindObjectsFinal(CK_SESSION_HANDLE session)
{
	CK_RV rv;

	if (session_fault("C_FindObjectsFinal", session, &rv))
		return rv;
	rv = real->C_FindObjectsFinal(session);
	return rv;
}

static CK_RV w_C_EncryptInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key)
{
	CK_RV rv;

	if (session_fault("C_EncryptInit", session, &rv))
		return rv;
	rv = real->C_EncryptInit(session, mechanism, key);
	return rv;
}

static CK_RV w_C_Encrypt(CK_SESSION_HANDLE session, unsigned char *data, unsigned long data_len, unsigned char *encrypted_data, unsigned long *encrypted_data_len)
{
	CK_RV rv;

	if (session_fault("C_Encrypt", session, &rv))
		return rv;
	rv = real->C_Encrypt(session, data, data_len, encrypted_data, encrypted_data_len);
	return rv;
}

static CK_RV w_C_EncryptUpdate(CK_SESSION_HANDLE session, unsigned char *part, unsigned long part_len, unsigned char *encrypted_part, unsigned long *encrypted_part_len)
{
	CK_RV rv;

	if (session_fault("C_EncryptUpdate", session, &rv))
		return rv;
	rv = real->C_EncryptUpdate(session, part, part_len, encrypted_part, encrypted_part_len);
	return rv;
}

static CK_RV w_C_EncryptFinal(CK_SESSION_HANDLE session, unsigned char *last_encrypted_part, unsigned long *last_encrypted_part_len)
{
	CK_RV rv;

	if (session_fault("C_EncryptFinal", session, &rv))
		return rv;
	rv = real->C_EncryptFinal(session, last_encrypted_part, last_encrypted_part_len);
	return rv;
}

static CK_RV w_C_DecryptInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key)
{
	CK_RV rv;

	if (session_fault("C_DecryptInit", session, &rv))
		return rv;
	rv = real->C_DecryptInit(session, mechanism, key);
	return rv;
}

static CK_RV w_C_Decrypt(CK_SESSION_HANDLE session, unsigned char *encrypted_data, unsigned long encrypted_data_len, unsigned char *data, unsigned long *data_len)
{
	CK_RV rv;

	if (session_fault("C_Decrypt", session, &rv))
		return rv;
	rv = real->C_Decrypt(session, encrypted_data, encrypted_data_len, data, data_len);
	return rv;
}

static CK_RV w_C_DecryptUpdate(CK_SESSION_HANDLE session, unsigned char *encrypted_part, unsigned long encrypted_part_len, unsigned char *part, unsigned long *part_len)
{
	CK_RV rv;

	if (session_fault("C_DecryptUpdate", session, &rv))
		return rv;
	rv = real->C_DecryptUpdate(session, encrypted_part, encrypted_part_len, part, part_len);
	return rv;
}

static CK_RV w_C_DecryptFinal(CK_SESSION_HANDLE session, unsigned char *last_part, unsigned long *last_part_len)
{
	CK_RV rv;

	if (session_fault("C_DecryptFinal", session, &rv))
		return rv;
	rv = real->C_DecryptFinal(session, last_part, last_part_len);
	return rv;
}

static CK_RV w_C_DigestInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism)
{
	CK_RV rv;

	if (session_fault("C_DigestInit", session, &rv))
		return rv;
	rv = real->C_DigestInit(session, mechanism);
	return rv;
}

static CK_RV w_C_Digest(CK_SESSION_HANDLE session, unsigned char *data, unsigned long data_len, unsigned char *digest, unsigned long *digest_len)
{
	CK_RV rv;

	if (session_fault("C_Digest", session, &rv))
		return rv;
	rv = real->C_Digest(session, data, data_len, digest, digest_len);
	return rv;
}

static CK_RV w_C_DigestUpdate(CK_SESSION_HANDLE session, unsigned char *part, unsigned long part_len)
{
	CK_RV rv;

	if (session_fault("C_DigestUpdate", session, &rv))
		return rv;
	rv = real->C_DigestUpdate(session, part, part_len);
	return rv;
}

static CK_RV w_C_DigestKey(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key)
{
	CK_RV rv;

	if (session_fault("C_DigestKey", session, &rv))
		return rv;
	rv = real->C_DigestKey(session, key);
	return rv;
}

static CK_RV w_C_DigestFinal(CK_SESSION_HANDLE session, unsigned char *digest, unsigned long *digest_len)
{
	CK_RV rv;

	if (session_fault("C_DigestFinal", session, &rv))
		return rv;
	rv = real->C_DigestFinal(session, digest, digest_len);
	return rv;
}

static CK_RV w_C_SignInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key)
{
	CK_RV rv;

	if (session_fault("C_SignInit", session, &rv))
		return rv;
	if (refused_sign_mechanism(mechanism))
		return CKR_MECHANISM_INVALID;
	rv = real->C_SignInit(session, mechanism, key);
	if (rv == CKR_OK)
		sign_started(session, mechanism);
	return rv;
}

static CK_RV w_C_Sign(CK_SESSION_HANDLE session, unsigned char *data, unsigned long data_len, unsigned char *signature, unsigned long *signature_len)
{
	CK_RV rv;

	if (session_fault("C_Sign", session, &rv))
		return rv;
	rv = real->C_Sign(session, data, data_len, signature, signature_len);
	if (rv == CKR_OK && signature) {
		signature_out(session, signature, signature_len);
		signature_made();
	}
	return rv;
}

static CK_RV w_C_SignUpdate(CK_SESSION_HANDLE session, unsigned char *part, unsigned long part_len)
{
	CK_RV rv;

	if (session_fault("C_SignUpdate", session, &rv))
		return rv;
	rv = real->C_SignUpdate(session, part, part_len);
	return rv;
}

static CK_RV w_C_SignFinal(CK_SESSION_HANDLE session, unsigned char *signature, unsigned long *signature_len)
{
	CK_RV rv;

	if (session_fault("C_SignFinal", session, &rv))
		return rv;
	rv = real->C_SignFinal(session, signature, signature_len);
	if (rv == CKR_OK && signature) {
		signature_out(session, signature, signature_len);
		signature_made();
	}
	return rv;
}

static CK_RV w_C_SignRecoverInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key)
{
	CK_RV rv;

	if (session_fault("C_SignRecoverInit", session, &rv))
		return rv;
	rv = real->C_SignRecoverInit(session, mechanism, key);
	return rv;
}

static CK_RV w_C_SignRecover(CK_SESSION_HANDLE session, unsigned char *data, unsigned long data_len, unsigned char *signature, unsigned long *signature_len)
{
	CK_RV rv;

	if (session_fault("C_SignRecover", session, &rv))
		return rv;
	rv = real->C_SignRecover(session, data, data_len, signature, signature_len);
	return rv;
}

static CK_RV w_C_VerifyInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key)
{
	CK_RV rv;

	if (session_fault("C_VerifyInit", session, &rv))
		return rv;
	if (mechanism && hidden_mechanism(mechanism->mechanism))
		return CKR_MECHANISM_INVALID;
	rv = real->C_VerifyInit(session, mechanism, key);
	return rv;
}

static CK_RV w_C_Verify(CK_SESSION_HANDLE session, unsigned char *data, unsigned long data_len, unsigned char *signature, unsigned long signature_len)
{
	CK_RV rv;

	if (session_fault("C_Verify", session, &rv))
		return rv;
	rv = real->C_Verify(session, data, data_len, signature, signature_len);
	return rv;
}

static CK_RV w_C_VerifyUpdate(CK_SESSION_HANDLE session, unsigned char *part, unsigned long part_len)
{
	CK_RV rv;

	if (session_fault("C_VerifyUpdate", session, &rv))
		return rv;
	rv = real->C_VerifyUpdate(session, part, part_len);
	return rv;
}

static CK_RV w_C_VerifyFinal(CK_SESSION_HANDLE session, unsigned char *signature, unsigned long signature_len)
{
	CK_RV rv;

	if (session_fault("C_VerifyFinal", session, &rv))
		return rv;
	rv = real->C_VerifyFinal(session, signature, signature_len);
	return rv;
}

static CK_RV w_C_VerifyRecoverInit(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE key)
{
	CK_RV rv;

	if (session_fault("C_VerifyRecoverInit", session, &rv))
		return rv;
	rv = real->C_VerifyRecoverInit(session, mechanism, key);
	return rv;
}

static CK_RV w_C_VerifyRecover(CK_SESSION_HANDLE session, unsigned char *signature, unsigned long signature_len, unsigned char *data, unsigned long *data_len)
{
	CK_RV rv;

	if (session_fault("C_VerifyRecover", session, &rv))
		return rv;
	rv = real->C_VerifyRecover(session, signature, signature_len, data, data_len);
	return rv;
}

static CK_RV w_C_DigestEncryptUpdate(CK_SESSION_HANDLE session, unsigned char *part, unsigned long part_len, unsigned char *encrypted_part, unsigned long *encrypted_part_len)
{
	CK_RV rv;

	if (session_fault("C_DigestEncryptUpdate", session, &rv))
		return rv;
	rv = real->C_DigestEncryptUpdate(session, part, part_len, encrypted_part, encrypted_part_len);
	return rv;
}

static CK_RV w_C_DecryptDigestUpdate(CK_SESSION_HANDLE session, unsigned char *encrypted_part, unsigned long encrypted_part_len, unsigned char *part, unsigned long *part_len)
{
	CK_RV rv;

	if (session_fault("C_DecryptDigestUpdate", session, &rv))
		return rv;
	rv = real->C_DecryptDigestUpdate(session, encrypted_part, encrypted_part_len, part, part_len);
	return rv;
}

static CK_RV w_C_SignEncryptUpdate(CK_SESSION_HANDLE session, unsigned char *part, unsigned long part_len, unsigned char *encrypted_part, unsigned long *encrypted_part_len)
{
	CK_RV rv;

	if (session_fault("C_SignEncryptUpdate", session, &rv))
		return rv;
	rv = real->C_SignEncryptUpdate(session, part, part_len, encrypted_part, encrypted_part_len);
	return rv;
}

static CK_RV w_C_DecryptVerifyUpdate(CK_SESSION_HANDLE session, unsigned char *encrypted_part, unsigned long encrypted_part_len, unsigned char *part, unsigned long *part_len)
{
	CK_RV rv;

	if (session_fault("C_DecryptVerifyUpdate", session, &rv))
		return rv;
	rv = real->C_DecryptVerifyUpdate(session, encrypted_part, encrypted_part_len, part, part_len);
	return rv;
}

static CK_RV w_C_GenerateKey(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_ATTRIBUTE *templ, unsigned long count, CK_OBJECT_HANDLE *key)
{
	CK_RV rv;

	if (session_fault("C_GenerateKey", session, &rv))
		return rv;
	rv = real->C_GenerateKey(session, mechanism, templ, count, key);
	return rv;
}

static CK_RV w_C_GenerateKeyPair(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_ATTRIBUTE *public_key_template, unsigned long public_key_attribute_count, CK_ATTRIBUTE *private_key_template, unsigned long private_key_attribute_count, CK_OBJECT_HANDLE *public_key, CK_OBJECT_HANDLE *private_key)
{
	CK_RV rv;

	if (session_fault("C_GenerateKeyPair", session, &rv))
		return rv;
	rv = real->C_GenerateKeyPair(session, mechanism, public_key_template, public_key_attribute_count, private_key_template, private_key_attribute_count, public_key, private_key);
	return rv;
}

static CK_RV w_C_WrapKey(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE wrapping_key, CK_OBJECT_HANDLE key, unsigned char *wrapped_key, unsigned long *wrapped_key_len)
{
	CK_RV rv;

	CK_MECHANISM pad = {CKM_AES_KEY_WRAP_PAD, NULL, 0};

	if (session_fault("C_WrapKey", session, &rv))
		return rv;
	if (kwp && mechanism && mechanism->mechanism == CKM_AES_KEY_WRAP_KWP)
		mechanism = &pad;
	rv = real->C_WrapKey(session, mechanism, wrapping_key, key, wrapped_key, wrapped_key_len);
	return rv;
}

static CK_RV w_C_UnwrapKey(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE unwrapping_key, unsigned char *wrapped_key, unsigned long wrapped_key_len, CK_ATTRIBUTE *templ, unsigned long attribute_count, CK_OBJECT_HANDLE *key)
{
	CK_RV rv;

	CK_MECHANISM pad = {CKM_AES_KEY_WRAP_PAD, NULL, 0};

	if (session_fault("C_UnwrapKey", session, &rv))
		return rv;
	if (mechanism)
		count_unwrap(mechanism->mechanism);
	if (wrap_pad_pkcs11 && mechanism && mechanism->mechanism == CKM_AES_KEY_WRAP_PAD)
		return unwrap_pad_pkcs11(session, unwrapping_key, wrapped_key, wrapped_key_len, templ, attribute_count, key);
	if (kwp && mechanism && mechanism->mechanism == CKM_AES_KEY_WRAP_KWP)
		mechanism = &pad;
	rv = real->C_UnwrapKey(session, mechanism, unwrapping_key, wrapped_key, wrapped_key_len, templ, attribute_count, key);
	return rv;
}

static CK_RV w_C_DeriveKey(CK_SESSION_HANDLE session, CK_MECHANISM *mechanism, CK_OBJECT_HANDLE base_key, CK_ATTRIBUTE *templ, unsigned long attribute_count, CK_OBJECT_HANDLE *key)
{
	CK_RV rv;

	if (session_fault("C_DeriveKey", session, &rv))
		return rv;
	rv = real->C_DeriveKey(session, mechanism, base_key, templ, attribute_count, key);
	return rv;
}

static CK_RV w_C_SeedRandom(CK_SESSION_HANDLE session, unsigned char *seed, unsigned long seed_len)
{
	CK_RV rv;

	if (session_fault("C_SeedRandom", session, &rv))
		return rv;
	rv = real->C_SeedRandom(session, seed, seed_len);
	return rv;
}

static CK_RV w_C_GenerateRandom(CK_SESSION_HANDLE session, unsigned char *random_data, unsigned long random_len)
{
	CK_RV rv;

	if (session_fault("C_GenerateRandom", session, &rv))
		return rv;
	rv = real->C_GenerateRandom(session, random_data, random_len);
	return rv;
}

static CK_RV w_C_GetFunctionStatus(CK_SESSION_HANDLE session)
{
	CK_RV rv;

	if (session_fault("C_GetFunctionStatus", session, &rv))
		return rv;
	rv = real->C_GetFunctionStatus(session);
	return rv;
}

static CK_RV w_C_CancelFunction(CK_SESSION_HANDLE session)
{
	CK_RV rv;

	if (session_fault("C_CancelFunction", session, &rv))
		return rv;
	rv = real->C_CancelFunction(session);
	return rv;
}

static CK_RV w_C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID *slot, void *reserved)
{
	CK_RV rv;

	if (host_fault("C_WaitForSlotEvent", &rv))
		return rv;
	rv = real->C_WaitForSlotEvent(flags, slot, reserved);
	return rv;
}

static CK_FUNCTION_LIST wrapped = {
	.version = {2, 40},
	.C_Initialize = w_C_Initialize,
	.C_Finalize = w_C_Finalize,
	.C_GetInfo = w_C_GetInfo,
	.C_GetFunctionList = C_GetFunctionList,
	.C_GetSlotList = w_C_GetSlotList,
	.C_GetSlotInfo = w_C_GetSlotInfo,
	.C_GetTokenInfo = w_C_GetTokenInfo,
	.C_GetMechanismList = w_C_GetMechanismList,
	.C_GetMechanismInfo = w_C_GetMechanismInfo,
	.C_InitToken = w_C_InitToken,
	.C_InitPIN = w_C_InitPIN,
	.C_SetPIN = w_C_SetPIN,
	.C_OpenSession = w_C_OpenSession,
	.C_CloseSession = w_C_CloseSession,
	.C_CloseAllSessions = w_C_CloseAllSessions,
	.C_GetSessionInfo = w_C_GetSessionInfo,
	.C_GetOperationState = w_C_GetOperationState,
	.C_SetOperationState = w_C_SetOperationState,
	.C_Login = w_C_Login,
	.C_Logout = w_C_Logout,
	.C_CreateObject = w_C_CreateObject,
	.C_CopyObject = w_C_CopyObject,
	.C_DestroyObject = w_C_DestroyObject,
	.C_GetObjectSize = w_C_GetObjectSize,
	.C_GetAttributeValue = w_C_GetAttributeValue,
	.C_SetAttributeValue = w_C_SetAttributeValue,
	.C_FindObjectsInit = w_C_FindObjectsInit,
	.C_FindObjects = w_C_FindObjects,
	.C_FindObjectsFinal = w_C_FindObjectsFinal,
	.C_EncryptInit = w_C_EncryptInit,
	.C_Encrypt = w_C_Encrypt,
	.C_EncryptUpdate = w_C_EncryptUpdate,
	.C_EncryptFinal = w_C_EncryptFinal,
	.C_DecryptInit = w_C_DecryptInit,
	.C_Decrypt = w_C_Decrypt,
	.C_DecryptUpdate = w_C_DecryptUpdate,
	.C_DecryptFinal = w_C_DecryptFinal,
	.C_DigestInit = w_C_DigestInit,
	.C_Digest = w_C_Digest,
	.C_DigestUpdate = w_C_DigestUpdate,
	.C_DigestKey = w_C_DigestKey,
	.C_DigestFinal = w_C_DigestFinal,
	.C_SignInit = w_C_SignInit,
	.C_Sign = w_C_Sign,
	.C_SignUpdate = w_C_SignUpdate,
	.C_SignFinal = w_C_SignFinal,
	.C_SignRecoverInit = w_C_SignRecoverInit,
	.C_SignRecover = w_C_SignRecover,
	.C_VerifyInit = w_C_VerifyInit,
	.C_Verify = w_C_Verify,
	.C_VerifyUpdate = w_C_VerifyUpdate,
	.C_VerifyFinal = w_C_VerifyFinal,
	.C_VerifyRecoverInit = w_C_VerifyRecoverInit,
	.C_VerifyRecover = w_C_VerifyRecover,
	.C_DigestEncryptUpdate = w_C_DigestEncryptUpdate,
	.C_DecryptDigestUpdate = w_C_DecryptDigestUpdate,
	.C_SignEncryptUpdate = w_C_SignEncryptUpdate,
	.C_DecryptVerifyUpdate = w_C_DecryptVerifyUpdate,
	.C_GenerateKey = w_C_GenerateKey,
	.C_GenerateKeyPair = w_C_GenerateKeyPair,
	.C_WrapKey = w_C_WrapKey,
	.C_UnwrapKey = w_C_UnwrapKey,
	.C_DeriveKey = w_C_DeriveKey,
	.C_SeedRandom = w_C_SeedRandom,
	.C_GenerateRandom = w_C_GenerateRandom,
	.C_GetFunctionStatus = w_C_GetFunctionStatus,
	.C_CancelFunction = w_C_CancelFunction,
	.C_WaitForSlotEvent = w_C_WaitForSlotEvent,
};
