{{!--
  An nginx reverse proxy in front of the healthy instances of service "web",
  nearest first, with its settings in KV. On a host next to nginx:

    plexctl service register web --port http:8080/tcp --check http:http/healthz
    plexctl kv put config/proxy/listen 80
    plexctl kv put config/proxy/server-name shop.example.com
    plexctl kv put config/proxy/headers/X-Forwarded-Proto '"http"'
    plexctl template --source examples/nginx-upstream.tpl \
      --dest /etc/nginx/conf.d/web.conf --exec 'nginx -t && nginx -s reload'

  Instances coming, going or failing their checks rewrite the file (atomically)
  and reload nginx once per change. A missing config/proxy/ key stops the
  render with an error naming it instead of writing an empty value.
--}}
upstream web {
  least_conn;
{{#each (service "web")}}
  server {{address}}:{{port}}; # {{name}} on {{host}}
{{else}}
  server 127.0.0.1:9 down; # no healthy instance of web: nginx needs one server
{{/each}}
}

server {
  listen {{key "config/proxy/listen"}};
  server_name {{key "config/proxy/server-name"}};

  location / {
    proxy_pass http://web;
{{#each (tree "config/proxy/headers/")}}
    proxy_set_header {{name}} {{value}};
{{/each}}
  }
}
