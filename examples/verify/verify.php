<?php
// Verify a Herald webhook in PHP. Either signature proves the request; webhook-signature carries
// one entry per valid secret during a rotation, X-Herald-Signature the previous secret until the
// rotation is confirmed.
const TOLERANCE_SECONDS = 300;

function verify_herald(string $secret, array $headers, string $body): bool {
    $timestamp = $headers['x-herald-timestamp'];
    $received = $headers['x-herald-signature'];
    if (abs(time() - strtotime($timestamp)) > TOLERANCE_SECONDS) return false;
    $expected = 'sha256=' . hash_hmac('sha256', $timestamp . '.' . $body, $secret);
    return hash_equals($expected, $received);
}

function verify_standard(string $secret, array $headers, string $body): bool {
    $id = $headers['webhook-id'];
    $timestamp = $headers['webhook-timestamp'];
    if (abs(time() - (int)$timestamp) > TOLERANCE_SECONDS) return false;
    $key = base64_decode(preg_replace('/^whsec_/', '', $secret));
    $expected = base64_encode(hash_hmac('sha256', "$id.$timestamp.$body", $key, true));
    foreach (explode(' ', $headers['webhook-signature']) as $entry) {
        if (str_starts_with($entry, 'v1,') && hash_equals($expected, substr($entry, 3))) return true;
    }
    return false;
}

// In a handler: $body = file_get_contents('php://input');
// $headers = array_change_key_case(getallheaders(), CASE_LOWER);
