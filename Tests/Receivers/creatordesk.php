<?php
// CreatorDesk's PHP verification snippet, from ../shared/reference/000_ceb4263153d1b093.txt,
// section "3. Verify HMAC Signature" (lines 431-447), as written there; served by PHP's built-in
// server: php -S 127.0.0.1:$PORT creatordesk.php. Filled in: nothing (the snippet reads
// $WEBHOOK_SECRET itself). Added: the request log ($RECEIVER_LOG), written when the script ends.
register_shutdown_function(function () {
    $path = getenv("RECEIVER_LOG");
    if (!$path) return;
    $headers = [];
    foreach (getallheaders() as $name => $value) $headers[strtolower($name)] = $value;
    $line = ["headers" => $headers, "body_base64" => base64_encode(file_get_contents("php://input")), "status" => http_response_code()];
    file_put_contents($path, json_encode($line, JSON_UNESCAPED_SLASHES) . "\n", FILE_APPEND | LOCK_EX);
});

// --- from the reference document ---
$secret = getenv("WEBHOOK_SECRET");
$body = file_get_contents("php://input");  // raw bytes
$ts = $_SERVER["HTTP_X_CREATORDESK_TIMESTAMP"];
$received = $_SERVER["HTTP_X_CREATORDESK_SIGNATURE"];

$message = $ts . "." . $body;
$expected = "sha256=" . hash_hmac("sha256", $message, $secret);

if (!hash_equals($expected, $received)) {
    http_response_code(401);
    exit("invalid signature");
}

$payload = json_decode($body, true);
// ... verarbeiten
echo "ok";
