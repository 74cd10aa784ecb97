# Creative Force's Sinatra example, from ../shared/reference/002_dc2d2fa87ccb28de.txt, "Example"
# (lines 1361-1379), as written there. Filled in: nothing (it reads ENV['SECRET_TOKEN'] and
# X-CF-Signature itself). Added: require 'openssl' (the example relies on Rack loading it), the
# port and address ($PORT, 127.0.0.1) and the request log ($RECEIVER_LOG, an after filter).
# Its path is the example's, /payload. Debian's ruby, ruby-sinatra and ruby-webrick run it.
require 'openssl'
require 'base64'

# --- from the reference document ---
require 'sinatra'
require 'json'

post '/payload' do
request.body.rewind
payload_body = request.body.read

verify_signature(payload_body)

push = JSON.parse(payload_body)
puts "I got callback, JSON: #{push}"

return halt 200, "OK"
end

def verify_signature(payload_body)
signature = OpenSSL::HMAC.hexdigest(OpenSSL::Digest.new('SHA256'), ENV['SECRET_TOKEN'], payload_body)
return halt 500, "Signatures didn't match!" unless Rack::Utils.secure_compare(signature, request.env['HTTP_X_CF_SIGNATURE'])
end
# --- end ---

set :bind, '127.0.0.1'
set :port, Integer(ENV.fetch('PORT'))
set :server, 'webrick'
set :logging, false

after do
  path = ENV['RECEIVER_LOG']
  next unless path
  request.body.rewind
  headers = request.env.select { |name, _| name.start_with?('HTTP_') || %w[CONTENT_TYPE CONTENT_LENGTH].include?(name) }
                       .to_h { |name, value| [name.sub(/\AHTTP_/, '').downcase.tr('_', '-'), value] }
  line = { headers: headers, body_base64: Base64.strict_encode64(request.body.read), status: response.status }
  File.open(path, 'a') { |log| log.puts(JSON.generate(line)) }
end
